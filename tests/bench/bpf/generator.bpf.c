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
//
// With `flows` set, it then writes the UDP ports of the (802.1Q-tagged)
// frame: n in 1..2^32-2 cycles the source port through 1024..1024+n-1 (n
// established flows), 2^32-1 makes every frame a new flow (the destination
// port steps through 1024..61023 with every frame, the source port each
// time those wrap).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define UDP_PORTS 38 // Ethernet 14 + 802.1Q 4 + IPv4 20
#define NEW_FLOWS 0xffffffffu
#define PORT_BASE 1024
#define PORT_SPAN 60000

// The first 64 bytes of the frame to send (set by the loader).
const volatile __u64 template_head[8] = {};
// How to vary the ports (set by the loader): 0 not at all.
const volatile __u32 flows = 0;
// Frames generated so far (one generator thread per program).
__u64 frame_no = 0;

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
    if (flows) {
        __u64 n = frame_no++;
        __u16 sport = PORT_BASE, dport = 9;
        __be16 *ports = data + UDP_PORTS;
        if (flows == NEW_FLOWS) {
            dport = PORT_BASE + n % PORT_SPAN;
            sport = PORT_BASE + (n / PORT_SPAN) % PORT_SPAN;
        } else {
            sport = PORT_BASE + n % flows;
        }
        ports[0] = bpf_htons(sport);
        ports[1] = bpf_htons(dport);
    }
    return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
