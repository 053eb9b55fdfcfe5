// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// Attached (native) to the far end of a gateway node's veth links: a veth
// takes the frames its peer's XDP program sends (XDP_TX, devmap redirects)
// only when it runs an XDP program itself. It passes everything on, as the
// port of a real switch or NIC would receive it. Multi-buffer aware
// (`xdp.frags`): a veth refuses a program that is not on a link whose MTU
// exceeds a page (a jumbo trunk).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp.frags")
int lab_pass(struct xdp_md *ctx)
{
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
