# The fake installer of tests/testbed/fake_installer_iso.py (GNU as, 16-bit real mode).
# Rebuild: as --32 -o fi.o fake_installer.S && ld -m elf_i386 -Ttext 0 --oformat binary -o fi.bin fi.o
        .code16
        .text
        .globl _start
# Loaded at 0:7C00 by the BIOS (El Torito, no emulation, 4 sectors).
_start:
        cli
        xor %ax, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov $0x7c00, %sp
        sti
        ljmp $0, $(0x7c00 + go - _start)
go:
        mov $(0x7c00 + menu - _start), %si
        call print
        xor %bx, %bx              # BL: the highlighted entry, 0..2
menuloop:
        xor %ax, %ax
        int $0x16
        cmp $0x0d, %al
        je chosen
        cmp $0x50, %ah            # Down
        jne notdown
        cmp $2, %bl
        je menuloop
        inc %bl
        jmp marked
notdown:
        cmp $0x48, %ah            # Up
        jne menuloop
        test %bl, %bl
        jz menuloop
        dec %bl
marked:
        mov %bl, %al
        add $'1', %al
        call putc
        jmp menuloop
chosen:
        # Copy the installed system's boot sector (template) to 0x8000.
        mov $(0x7c00 + tmpl - _start), %si
        mov $0x8000, %di
        mov $512, %cx
        cld
        rep movsb
        # Append "role=<name> ip=" to its message.
        mov $(0x8000 + tend - tmpl), %di
        mov $(0x7c00 + roles - _start), %si
        mov %bl, %cl              # skip BL NUL-terminated names
skip:
        test %cl, %cl
        jz copyrole
1:      lodsb
        test %al, %al
        jnz 1b
        dec %cl
        jmp skip
copyrole:
        push %si
        mov $(0x7c00 + rolep - _start), %si
        call print
        pop %si
        push %si
        call print
        pop %si
2:      lodsb
        test %al, %al
        jz 3f
        stosb
        jmp 2b
3:      mov $(0x7c00 + ipp - _start), %si
        call print
        mov $(0x7c00 + ipt - _start), %si
4:      lodsb
        test %al, %al
        jz readip
        stosb
        jmp 4b
readip:
        mov $(0x8000 + 0x1f8), %bp  # room for the answer ends before the signature
5:      xor %ax, %ax
        int $0x16
        cmp $0x0d, %al
        je written
        test %al, %al
        jz 5b
        cmp %bp, %di
        jae 5b
        stosb
        call putc
        jmp 5b
written:
        mov $0x0a0d, %ax
        stosw
        xor %al, %al
        stosb
        mov $(0x7c00 + wrp - _start), %si
        call print
        mov $0x0301, %ax          # write 1 sector
        mov $0x0001, %cx          # cylinder 0, sector 1
        mov $0x80, %dx            # head 0, first hard disk
        mov $0x8000, %bx
        int $0x13
        jc diskerr
        mov $(0x7c00 + donep - _start), %si
        call print
        mov $0xfe, %al            # reset through the keyboard controller
        out %al, $0x64
halt:   hlt
        jmp halt
diskerr:
        mov $(0x7c00 + errp - _start), %si
        call print
        jmp halt

# print: the NUL-terminated string at DS:SI to COM1 and the screen.
print:
        lodsb
        test %al, %al
        jz 6f
        call putc
        jmp print
6:      ret
putc:
        push %ax
        push %bx
        push %dx
        mov $0x3f8, %dx
        out %al, %dx
        mov $0x0e, %ah
        mov $0x0007, %bx
        int $0x10
        pop %dx
        pop %bx
        pop %ax
        ret

menu:   .ascii "NESTLAB FAKE INSTALLER\r\n"
        .ascii "  1 Cloud in a Box\r\n  2 Frontend\r\n  3 Node Controller\r\n"
        .asciz "MENU>"
roles:  .asciz "Cloud in a Box"
        .asciz "Frontend"
        .asciz "Node Controller"
rolep:  .asciz "\r\nINSTALLING "
ipp:    .asciz "\r\nIP>"
ipt:    .asciz " ip="
wrp:    .asciz "\r\nWRITING DISK\r\n"
donep:  .asciz "INSTALL DONE\r\n"
errp:   .asciz "DISK WRITE FAILED\r\n"

        .balign 16
# The installed system's boot sector: prints its message to COM1 and the screen, then halts.
tmpl:
        xor %ax, %ax
        mov %ax, %ds
        mov $(0x7c00 + tmsg - tmpl), %si
7:      lodsb
        test %al, %al
        jz 8f
        mov $0x3f8, %dx
        out %al, %dx
        mov $0x0e, %ah
        mov $0x0007, %bx
        int $0x10
        jmp 7b
8:      hlt
        jmp 8b
tmsg:   .ascii "INSTALLED SYSTEM role="
tend:   .byte 0
        .org tmpl + 510
        .byte 0x55, 0xaa
        .org 2048
