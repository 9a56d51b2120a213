/* A stand-in FreeBSD kernel for tracebridge's pmcstat tests: a few functions
 * with the names hwpmc callchains show, linked at the amd64 KERNBASE load
 * address.  Build (GNU toolchain):
 *   gcc -O1 -ffreestanding -fno-pic -mcmodel=kernel -mno-red-zone -fno-inline -c kernel.c
 *   ld -m elf_x86_64 -static -nostdlib -z noseparate-code -z norelro -e btext \
 *      -Ttext-segment=0xffffffff80200000 -o kernel kernel.o
 *   LC_ALL=C readelf -sW kernel > kernel.readelf-s.txt
 */
volatile int sink;
void btext(void) { sink = 0; }
int __mtx_unlock_flags(int v) { sink += v; return sink * 3 + 1; }
int witness_unlock(int v) { return __mtx_unlock_flags(v + 1) + 7; }
int ether_input(int v) { int r = 0; for (int i = 0; i < v; i++) r += witness_unlock(i); return r; }
int taskqueue_run(int v) { return ether_input(v) ^ 0x55; }
int kern_ioctl(int v) { return taskqueue_run(v * 2) + witness_unlock(v); }
int sys_ioctl(int v) { return kern_ioctl(v) - 1; }
int amd64_syscall(int v) { return sys_ioctl(v) + sys_ioctl(v + 1); }
int fork_exit(int v) { return taskqueue_run(v) + amd64_syscall(v); }
/* Assembly entry points often have no .size: a zero-size STT_FUNC symbol. */
__asm__(".text\n.globl doreti\n.type doreti,@function\ndoreti:\n\tnop\n\tnop\n\tret\n");
