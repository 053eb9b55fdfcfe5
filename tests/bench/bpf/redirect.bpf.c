// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// Mode (i) of the forwarding benchmark, the bare XDP_REDIRECT forwarder:
// the kernel's ceiling for what the XDP tier does, as (b) is the ceiling of
// the AF_XDP path. Attached (native XDP) to the device's port `in`, it
// rewrites the fields (b) rewrites, with constants: MACs, the VLAN ID (the
// priority bits kept), the TTL - 1 with the IPv4 checksum updated
// incrementally (RFC 1624); no parsing, no lookup, no check. Every frame
// goes through a devmap to `out` (slot 0, written by the loader).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// Set by the loader.
const volatile __u8 dst_mac[6] = {};
const volatile __u8 src_mac[6] = {};
const volatile __u16 vlan_id = 0;

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bpf_devmap_val);
} out_port SEC(".maps");

SEC("xdp")
int redirect(struct xdp_md *ctx)
{
    __u8 *p = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    // Ethernet, 802.1Q, the IPv4 header up to its checksum.
    if ((void *)(p + 30) <= end) {
#pragma unroll
        for (int i = 0; i < 6; i++) {
            p[i] = dst_mac[i];
            p[6 + i] = src_mac[i];
        }
        __u16 tci = (((__u16)p[14] << 8) | p[15]) & 0xf000;
        tci |= vlan_id & 0x0fff;
        p[14] = tci >> 8;
        p[15] = tci & 0xff;
        // The TTL is the high byte of the 16-bit word at 26: -1 there is
        // -0x0100, so the checksum gains 0x0100.
        p[26] -= 1;
        __u32 sum = (((__u32)p[28] << 8) | p[29]) + 0x0100;
        sum = (sum & 0xffff) + (sum >> 16);
        p[28] = sum >> 8;
        p[29] = sum & 0xff;
    }
    return bpf_redirect_map(&out_port, 0, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
