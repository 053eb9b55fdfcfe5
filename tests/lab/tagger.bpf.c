// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// Access-port VLAN tagger of the lab switch (the kernel here has no 802.1Q
// module and its bridge no VLAN filtering). Attached with tc to the switch
// side of a remote instance's link:
//   ingress (from the instance): tag with VID;
//   egress (toward the instance): only frames of VID pass, untagged.
// That is what a switch access port does. Built per VLAN: -DVID=<id>.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef VID
#error "build with -DVID=<vlan id>"
#endif

SEC("classifier/push")
int push(struct __sk_buff *skb)
{
    if (skb->vlan_present)
        return TC_ACT_SHOT;
    if (VID == 0)
        return TC_ACT_OK;
    if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), VID))
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}

SEC("classifier/pop")
int pop(struct __sk_buff *skb)
{
    if (VID == 0)
        return skb->vlan_present ? TC_ACT_SHOT : TC_ACT_OK;
    if (!skb->vlan_present || (skb->vlan_tci & 0x0fff) != VID)
        return TC_ACT_SHOT;
    if (bpf_skb_vlan_pop(skb))
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
