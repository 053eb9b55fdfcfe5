// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// XDP program of a gateway port: every frame goes to the AF_XDP socket bound
// to its receive queue; a frame arriving on a queue without a socket falls
// through to the kernel (XDP_PASS), so the port keeps working while the
// dataplane starts or restarts.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

SEC("xdp")
int trunkline_redirect(struct xdp_md *ctx)
{
    return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
