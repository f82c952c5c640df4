# The fake installer of tests/testbed/fake_installer_iso.py (GNU as, 16-bit real mode).
# Rebuild: as --32 -o fi.o fake_installer.S && ld -m elf_i386 -Ttext 0 --oformat binary -o fi.bin fi.o
        .code16
        .set BOOTDRV, 0x5f0       # free low memory: the boot drive, the disk address packet
        .set DAP, 0x600
        .set MSG, 0x8800          # the installed system's boot sector, built here
        .set DIRBUF, 0x9000       # a sector of the seed's root directory
        .set FILEBUF, 0x9800      # a sector of one of its files
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
        mov %dl, BOOTDRV          # the BIOS's number for this CD-ROM
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
        # Copy the installed system's boot sector (template) to MSG, past this image.
        mov $(0x7c00 + tmpl - _start), %si
        mov $MSG, %di
        mov $512, %cx
        cld
        rep movsb
        # Append "role=<name> ip=" to its message.
        mov $(MSG + tend - tmpl), %di
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
3:      mov $(MSG + 0x1f8), %bp    # room for the answers ends before the signature
        call seed
        jnc written
        mov $(0x7c00 + ipp - _start), %si
        call print
        mov $(0x7c00 + ipt - _start), %si
4:      lodsb
        test %al, %al
        jz readip
        stosb
        jmp 4b
readip:
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
        mov $MSG, %bx
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

# seed: the answers from a seed medium, as an installer takes them from its answer file.
# Looks at every CD-ROM but the boot one (SeaBIOS numbers them from 0xE0) for an ISO 9660
# volume whose root directory (its first sector) holds a file with a line "ANSWERS: TEXT"
# in its first 2048 bytes; appends TEXT to the message at DI (up to BP) and echoes it.
# CF set: no seed or no answers. Uses DIRBUF and FILEBUF.
seed:
        mov $0xe0, %dl
seeddrive:
        cmp BOOTDRV, %dl
        je nextdrive
        mov $16, %eax             # the primary volume descriptor
        mov $DIRBUF, %bx
        call readsec
        jc nextdrive
        cmpl $0x30444301, DIRBUF  # type 1, "CD0"
        jne nextdrive
        mov DIRBUF + 156 + 2, %eax  # the root directory's extent
        call readsec
        jc nextdrive
        mov $DIRBUF, %si
record:
        movzbw (%si), %cx         # record length; 0 ends the sector
        jcxz nextdrive
        testb $2, 25(%si)         # a directory (".", "..", others): skip
        jnz nextrecord
        push %si
        mov 2(%si), %eax          # the file's extent
        mov $FILEBUF, %bx
        call readsec
        jc notanswers
        mov $FILEBUF, %si
find:
        cmp $(FILEBUF + 2048 - 9), %si
        jae notanswers
        push %di
        mov $(0x7c00 + answers - _start), %di
        mov $9, %cx
        push %si
        repe cmpsb
        pop %si
        pop %di
        je found
        inc %si
        jmp find
notanswers:
        pop %si
nextrecord:
        movzbw (%si), %cx
        add %cx, %si
        cmp $(DIRBUF + 2048), %si
        jb record
nextdrive:
        inc %dl
        cmp $0xe8, %dl
        jb seeddrive
        stc
        ret
found:
        pop %ax                   # the directory record kept on the stack
        add $9, %si
        push %si
        mov $(0x7c00 + seedp - _start), %si
        call print
        pop %si
        mov $' ', %al
        stosb
9:      lodsb
        cmp $' ', %al             # the line (and its text) ends at a control character
        jb 10f
        cmp %bp, %di
        jae 10f
        stosb
        call putc
        jmp 9b
10:     clc
        ret

# readsec: one 2048-byte sector EAX of drive DL to 0:BX (int 0x13 extended read). CF on error.
readsec:
        push %si
        movw $0x0010, DAP
        movw $1, DAP + 2
        mov %bx, DAP + 4
        movw $0, DAP + 6
        mov %eax, DAP + 8
        movl $0, DAP + 12
        mov $DAP, %si
        mov $0x42, %ah
        int $0x13
        pop %si
        ret

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
answers: .ascii "ANSWERS: "
seedp:  .asciz "\r\nANSWERS FROM SEED "

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
