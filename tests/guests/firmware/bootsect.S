/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A boot sector for the firmware tests (test-firmware.c): what a PC BIOS must do for an
 * unmodified disk or CD, checked from the guest's side.
 *
 * Assembled twice by make-media.sh with GNU as, linked flat at 0x7c00:
 *   MBR variant (default):       boot-mbr.bin, 1024 bytes. Sector 0 is the boot sector
 *                                (code before offset 446, an empty partition table that
 *                                make-media.sh fills in, 0x55 0xAA); sector 1 (LBA 1) holds
 *                                the magic string. Exits with 0x10 (host status 33).
 *   El Torito variant (--defsym CDBOOT=1): boot-cd.bin, 4096 bytes: a no-emulation boot
 *                                image whose first 2048 bytes (the 4 virtual sectors the
 *                                BIOS loads, at 0x7c0:0) hold the code and the boot info
 *                                table xorriso fills in (-boot-info-table), and whose
 *                                second 2048-byte sector, which the BIOS does not load,
 *                                holds the magic string. Exits with 0x11 (host status 35).
 *
 * Both print on the screen through int 10h (AH=0Eh) and on COM1 directly, read the magic
 * sector through int 13h AH=42h from the drive the BIOS passed in DL (the MBR variant falls
 * back to AH=02h when AH=41h says the extensions are missing), print it, and write the exit
 * value to the debug-exit port 0xf4. Output (each line ends in "\r\n"):
 *
 *   Vireo MBR boot sector          (or: Vireo El Torito boot image)
 *   drive: 80                      (DL from the BIOS, in hex; a CD is e0 or so)
 *   read: ext                      (or: read: chs, when only AH=02h works)
 *   magic: VIREO-MBR-LBA1-MAGIC    (or: magic: VIREO-CD-SECTOR-MAGIC)
 *
 * On a failed read: "FAIL: read error XX" (AH from int 13h) and exit value 0x1e (host
 * status 61); the CD variant without int 13h extensions: "FAIL: no int13 extensions",
 * exit value 0x1f (host status 63). If the debug-exit port is missing: cli; hlt forever.
 */

        .code16
        .text
        .globl  _start

        .equ    BUFFER, 0x9000          /* the magic sector is read here (2048 bytes max) */
        .equ    COM1, 0x3f8
        .equ    DEBUG_EXIT, 0xf4
.ifdef CDBOOT
        .equ    EXIT_VALUE, 0x11
.else
        .equ    EXIT_VALUE, 0x10
.endif

_start:
        /* BIOSes jump to 0:7c00 (disk) or 7c0:0 (El Torito): make CS 0 either way. */
        ljmp    $0, $start

.ifdef CDBOOT
        /* The El Torito boot info table, filled in by xorriso -boot-info-table. */
        .org    8
bi_pvd:         .long   0           /* LBA of the primary volume descriptor */
bi_file:        .long   0           /* LBA of this boot file (2048-byte sectors) */
bi_length:      .long   0
bi_checksum:    .long   0
bi_reserved:    .space  40
.endif

start:
        cli
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $0x7c00, %sp
        sti
        cld
        movb    %dl, drive

        call    serial_init
        movw    $msg_banner, %si
        call    puts
        movw    $msg_drive, %si
        call    puts
        movb    drive, %al
        call    puthex
        call    crlf

        /* Clear the start of the buffer, so that a read that did nothing shows. */
        movw    $BUFFER, %di
        movw    $32, %cx
        xorw    %ax, %ax
        rep stosw

        /* Are the int 13h extensions there? */
        movb    $0x41, %ah
        movw    $0x55aa, %bx
        movb    drive, %dl
        int     $0x13
        jc      no_ext
        cmpw    $0xaa55, %bx
        jne     no_ext
        testb   $1, %cl
        jz      no_ext

        /* AH=42h: read one sector at dap_lba into BUFFER. */
.ifdef CDBOOT
        movl    bi_file, %eax
        incl    %eax                    /* the boot file's second 2048-byte sector */
        movl    %eax, dap_lba
.endif
        movw    $msg_ext, %si
        call    puts
        movw    $dap, %si
        movb    $0x42, %ah
        movb    drive, %dl
        int     $0x13
        jc      read_error
        jmp     read_done

no_ext:
.ifdef CDBOOT
        movw    $msg_no_ext, %si
        call    puts
        movb    $0x1f, %al
        jmp     exit
.else
        /* AH=02h: cylinder 0, head 0, sector 2 (LBA 1). */
        movw    $msg_chs, %si
        call    puts
        movw    $0x0201, %ax
        movw    $0x0002, %cx
        xorb    %dh, %dh
        movb    drive, %dl
        movw    $BUFFER, %bx
        int     $0x13
        jc      read_error
.endif

read_done:
        movw    $msg_magic, %si
        call    puts
        movw    $BUFFER, %si
        movw    $64, %cx                /* print at most 64 characters of it */
1:      lodsb
        testb   %al, %al
        jz      2f
        call    putc
        loop    1b
2:      call    crlf
        movb    $EXIT_VALUE, %al
        jmp     exit

read_error:
        pushw   %ax
        movw    $msg_read_error, %si
        call    puts
        popw    %ax
        movb    %ah, %al
        call    puthex
        call    crlf
        movb    $0x1e, %al

exit:
        outb    %al, $DEBUG_EXIT
        cli
3:      hlt
        jmp     3b

/* 115200 baud, 8N1, no interrupts. */
serial_init:
        movw    $COM1 + 1, %dx
        xorb    %al, %al
        outb    %al, %dx                /* IER: no interrupts */
        movw    $COM1 + 3, %dx
        movb    $0x80, %al
        outb    %al, %dx                /* LCR: DLAB */
        movw    $COM1, %dx
        movb    $1, %al
        outb    %al, %dx                /* divisor 1 */
        incw    %dx
        xorb    %al, %al
        outb    %al, %dx
        movw    $COM1 + 3, %dx
        movb    $3, %al
        outb    %al, %dx                /* LCR: 8N1 */
        movw    $COM1 + 4, %dx
        movb    $3, %al
        outb    %al, %dx                /* MCR: DTR, RTS */
        ret

/* Prints the NUL-terminated string at DS:SI. */
puts:
        lodsb
        testb   %al, %al
        jz      1f
        call    putc
        jmp     puts
1:      ret

crlf:
        movb    $'\r', %al
        call    putc
        movb    $'\n', %al
        /* fall through */

/* Prints AL on the screen (int 10h teletype) and on COM1. Keeps every register. */
putc:
        pusha
        pushw   %ax
        movb    $0x0e, %ah
        movw    $0x0007, %bx
        int     $0x10
        movw    $COM1 + 5, %dx          /* LSR: wait (boundedly) for an empty THR */
        movw    $0xffff, %cx
1:      inb     %dx, %al
        testb   $0x20, %al
        jnz     2f
        loop    1b
2:      popw    %ax
        movw    $COM1, %dx
        outb    %al, %dx
        popa
        ret

/* Prints AL as two lowercase hex digits. */
puthex:
        pushw   %ax
        shrb    $4, %al
        call    puthex_digit
        popw    %ax
puthex_digit:
        andb    $0x0f, %al
        addb    $'0', %al
        cmpb    $'9', %al
        jbe     putc
        addb    $'a' - '9' - 1, %al
        jmp     putc

.ifdef CDBOOT
msg_banner:     .asciz  "Vireo El Torito boot image\r\n"
msg_no_ext:     .asciz  "FAIL: no int13 extensions\r\n"
.else
msg_banner:     .asciz  "Vireo MBR boot sector\r\n"
msg_chs:        .asciz  "read: chs\r\n"
.endif
msg_drive:      .asciz  "drive: "
msg_ext:        .asciz  "read: ext\r\n"
msg_magic:      .asciz  "magic: "
msg_read_error: .asciz  "FAIL: read error "

        .balign 4
/* The disk address packet for AH=42h: one sector into 0:BUFFER. */
dap:            .byte   16, 0
                .word   1               /* sectors (of the drive's size: 512 or 2048) */
                .word   BUFFER, 0       /* offset, segment */
dap_lba:        .quad   1               /* the CD variant sets this from bi_file */
drive:          .byte   0

.ifdef CDBOOT
        /* The rest of the 2048 bytes the BIOS loads, then the sector it does not. */
        .org    2048
        .asciz  "VIREO-CD-SECTOR-MAGIC"
        .org    4096
.else
        /* Code and data must leave room for the partition table at 446. */
        .org    446
        .space  64                      /* partition table: filled in by make-media.sh */
        .byte   0x55, 0xaa
        /* LBA 1: the magic sector, which only an int 13h read brings into memory. */
        .asciz  "VIREO-MBR-LBA1-MAGIC"
        .org    1024
.endif
