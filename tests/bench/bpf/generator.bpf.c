// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// Traffic generator of the forwarding benchmark. Run by BPF_PROG_RUN in
// live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES): the kernel builds a frame
// from the test input and runs this program on it; XDP_TX turns into a
// redirect out of the test's ingress interface (a veth toward the device
// under test), so frames leave at several Mpps from one core.
//
// The kernel recycles the frames' pages without resetting them, and the
// device under test may have rewritten a frame in place (TTL, MACs, VLAN),
// so every run first restores the headers from the template.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// The first 64 bytes of the frame to send (set by the loader).
const volatile __u64 template_head[8] = {};

SEC("xdp")
int generate(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u64 *head = data;

    if (data + 64 > end)
        return XDP_ABORTED;
#pragma unroll
    for (int i = 0; i < 8; i++)
        head[i] = template_head[i];
    return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
