/*
 * LD_PRELOAD library for benchmarks: the process sees an AVX2-only x86 CPU.
 *
 * Why: LiteRT's XNNPACK picks its kernels from CPUID at start. To compare
 * gatehouse's AVX2 kernel set against XNNPACK's AVX2 kernels on a machine
 * that has AVX-512, both must be told the CPU has no AVX-512, no AVX-VNNI
 * and no AMX (a Zen 2 or Zen 3 gateway has none of them). Forcing our set
 * with GATEHOUSE_KERNELS alone would pit it against XNNPACK's AVX-512 VNNI.
 *
 * How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID, the `cpuid_fault`
 * flag in /proc/cpuinfo) turns every CPUID instruction into SIGSEGV. The
 * handler runs the real CPUID with faulting briefly off, clears the feature
 * bits below in leaf 7, and steps over the instruction. Programs read CPUID
 * at start-up, so this costs nothing while they are measured. The hardware
 * stays what it is: the figures are AVX2 code on this CPU's cores.
 *
 * A benchmark tool only (benches/compare.py --hide-avx512 builds it with
 * gcc); nothing in the product or the tests loads it.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static int set_cpuid(int enabled) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

/* Leaf 7, sub-leaf 0. EBX: AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL. */
#define EBX_HIDE ((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31))
/* ECX: AVX512 VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ. */
#define ECX_HIDE ((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14))
/* EDX: AVX512 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512 FP16, AMX-TILE, AMX-INT8. */
#define EDX_HIDE ((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25))
/* Leaf 7, sub-leaf 1. EAX: AVX-VNNI, AVX512 BF16. */
#define EAX1_HIDE ((1u << 4) | (1u << 5))

static void on_segv(int sig, siginfo_t *info, void *context) {
    (void)info;
    ucontext_t *uc = context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) {
        /* A real fault: let it kill the process as it would have. */
        signal(sig, SIG_DFL);
        return;
    }
    uint32_t leaf = (uint32_t)r[REG_RAX], sub = (uint32_t)r[REG_RCX], a, b, c, d;
    set_cpuid(1);
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(sub));
    set_cpuid(0);
    if (leaf == 7 && sub == 0) {
        b &= ~EBX_HIDE;
        c &= ~ECX_HIDE;
        d &= ~EDX_HIDE;
    } else if (leaf == 7 && sub == 1) {
        a &= ~EAX1_HIDE;
    }
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void hide_avx512(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || set_cpuid(0) != 0) {
        fprintf(stderr, "hide_avx512: this kernel or CPU has no CPUID faulting\n");
        exit(2);
    }
}
