/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Entry code of the test guests.
 *
 * Two ways in, both in 32-bit protected mode with paging off:
 *   PVH        entry from the XEN_ELFNOTE_PHYS32_ENTRY note, %ebx = hvm_start_info
 *   Multiboot  ELF entry point, %eax = 0x2badb002, %ebx = multiboot info
 * Both load our own GDT, zero .bss, identity-map the first 4 GiB with 2 MiB pages,
 * switch to long mode and call runtime_start() in C.
 *
 * The AP trampoline (copied to TRAMP_BASE by smp.c) takes an AP from real mode to
 * long mode with the same GDT and page tables.
 */

#define MB_MAGIC        0x1badb002
#define MB_FLAGS        0x00000003      /* page-align modules, want memory info */
#define MB_BOOT_MAGIC   0x2badb002

#define SEL_CODE32      0x08
#define SEL_DATA        0x10
#define SEL_CODE64      0x18

#define TRAMP_BASE      0x8000

/* ---------------------------------------------------------------- headers */

        .section .multiboot, "a"
        .balign 4
mb_header:
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

        .section .note.pvh, "a"
        .balign 4
        .long 4                         /* n_namesz: "Xen\0" */
        .long 8                         /* n_descsz */
        .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .balign 4
        .quad pvh_start

/* ---------------------------------------------------------------- 32-bit entry */

        .section .text.boot, "ax"
        .code32

        .globl pvh_start
pvh_start:
        cli
        cld
        movl    %ebx, %esi
        movl    $1, %edi                /* BOOT_PVH */
        jmp     common32

        .globl mb_start
mb_start:
        cli
        cld
        movl    %ebx, %esi
        movl    $2, %edi                /* BOOT_MULTIBOOT */
        cmpl    $MB_BOOT_MAGIC, %eax
        je      common32
        movl    $3, %edi                /* unknown: runtime reports it */

common32:
        lgdtl   gdt_desc
        ljmpl   $SEL_CODE32, $1f
1:      movl    $SEL_DATA, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss
        movl    %eax, %fs
        movl    %eax, %gs

        /* Zero .bss (page tables and stacks live there). */
        movl    $__bss_start, %edx
        movl    $__bss_end, %ecx
        subl    %edx, %ecx
        shrl    $2, %ecx
        movl    %edx, %ebx
        xchgl   %ebx, %edi              /* keep the protocol in %ebx meanwhile */
        xorl    %eax, %eax
        rep stosl
        movl    %ebx, %edi

        movl    %esi, boot_info_paddr
        movl    %edi, boot_protocol

        /* PML4[0] -> PDPT; PDPT[0..3] -> PD0..PD3; PDn[i] = 2 MiB pages. */
        movl    $pdpt, %eax
        orl     $0x3, %eax
        movl    %eax, pml4
        movl    $page_dirs, %eax
        orl     $0x3, %eax
        movl    $pdpt, %ebx
        movl    $4, %ecx
2:      movl    %eax, (%ebx)
        addl    $4096, %eax
        addl    $8, %ebx
        loop    2b
        movl    $page_dirs, %ebx
        movl    $0x83, %eax             /* present, writable, 2 MiB */
        xorl    %edx, %edx              /* high dword of the entry */
        movl    $2048, %ecx
3:      movl    %eax, (%ebx)
        movl    %edx, 4(%ebx)
        addl    $0x200000, %eax
        addl    $8, %ebx
        loop    3b

        movl    $boot_stack_top, %esp
        jmp     enter_long

/*
 * Shared by the BSP and the APs: PAE, CR3, EFER.LME, paging, then a far jump to
 * 64-bit code.  %esp must point at a usable stack; %edi says who we are (0 = AP).
 */
enter_long:
        movl    %cr4, %eax
        orl     $0x20, %eax             /* PAE */
        movl    %eax, %cr4
        movl    $pml4, %eax
        movl    %eax, %cr3
        movl    $0xc0000080, %ecx       /* EFER */
        rdmsr
        orl     $0x100, %eax            /* LME */
        wrmsr
        movl    %cr0, %eax
        orl     $0x80000001, %eax       /* PG | PE */
        andl    $~0x6, %eax             /* clear EM and MP: no FPU use anyway */
        movl    %eax, %cr0
        testl   %edi, %edi
        jz      1f
        ljmpl   $SEL_CODE64, $bsp_long
1:      ljmpl   $SEL_CODE64, $ap_long

/* ---------------------------------------------------------------- 64-bit entry */

        .code64
bsp_long:
        movl    $SEL_DATA, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss
        movl    %eax, %fs
        movl    %eax, %gs
        movq    $boot_stack_top, %rsp
        xorl    %ebp, %ebp
        call    runtime_start
4:      cli
        hlt
        jmp     4b

ap_long:
        movl    $SEL_DATA, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss
        movl    %eax, %fs
        movl    %eax, %gs
        movq    ap_stack_top(%rip), %rsp
        xorl    %ebp, %ebp
        call    ap_start
5:      cli
        hlt
        jmp     5b

/* ---------------------------------------------------------------- interrupts */

/*
 * 256 stubs of 16 bytes each: push a dummy error code where the CPU does not,
 * push the vector, jump to the common path which saves the GPRs and calls
 * isr_dispatch(struct int_frame *).
 */
        .macro ISR_STUB vec
        .balign 16
        .if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
        .else
        pushq   $0
        .endif
        pushq   $\vec
        jmp     isr_common
        .endm

        .text
        .balign 16
        .globl isr_stubs
isr_stubs:
        .altmacro
        .set    vec, 0
        .rept   256
        ISR_STUB %vec
        .set    vec, vec + 1
        .endr
        .noaltmacro

isr_common:
        pushq   %rax
        pushq   %rbx
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rdi
        pushq   %rbp
        pushq   %r8
        pushq   %r9
        pushq   %r10
        pushq   %r11
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, %rdi
        movq    %rsp, %rbx
        andq    $~0xf, %rsp
        call    isr_dispatch
        movq    %rbx, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %r11
        popq    %r10
        popq    %r9
        popq    %r8
        popq    %rbp
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rbx
        popq    %rax
        addq    $16, %rsp
        iretq

/* ---------------------------------------------------------------- AP trampoline */

/*
 * Copied to TRAMP_BASE (4 KiB aligned, below 1 MiB); the SIPI vector is
 * TRAMP_BASE >> 12.  Runs with CS = TRAMP_BASE >> 4, IP = 0.
 */
        .section .rodata
        .balign 16
        .globl tramp_start, tramp_end
tramp_start:
        .code16
        cli
        cld
        xorw    %ax, %ax
        movw    %ax, %ds
        lgdtl   (TRAMP_BASE + tramp_gdt_desc - tramp_start)
        movl    %cr0, %eax
        orl     $1, %eax
        movl    %eax, %cr0
        ljmpl   $SEL_CODE32, $(TRAMP_BASE + tramp32 - tramp_start)
        .code32
tramp32:
        movl    $SEL_DATA, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss
        xorl    %edi, %edi              /* AP */
        movl    $(TRAMP_BASE + tramp_stack - tramp_start), %esp
        movl    $enter_long, %eax
        jmp     *%eax
        .balign 8
tramp_gdt_desc:
        .word   gdt_end - gdt - 1
        .long   gdt
        .balign 16
        .space  64                      /* tiny stack for the 32-bit leg (unused) */
tramp_stack:
tramp_end:
        .code64

/* ---------------------------------------------------------------- data */

        .data
        .balign 16
        .globl gdt
gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      /* 0x08: 32-bit code, flat */
        .quad   0x00cf92000000ffff      /* 0x10: data, flat */
        .quad   0x00af9a000000ffff      /* 0x18: 64-bit code */
gdt_end:
        .balign 8
gdt_desc:
        .word   gdt_end - gdt - 1
        .long   gdt

        .globl boot_info_paddr, boot_protocol, ap_stack_top
boot_info_paddr:
        .long   0
boot_protocol:
        .long   0
        .balign 8
ap_stack_top:
        .quad   0

        .bss
        .balign 4096
        .globl pml4
pml4:
        .space  4096
pdpt:
        .space  4096
page_dirs:
        .space  4 * 4096
        .balign 16
boot_stack:
        .space  16384
boot_stack_top:

        .section .note.GNU-stack, "", @progbits
