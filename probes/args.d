/*
 * tracebridge template "args": the arguments and return value of every call.
 *
 * Run:    dtrace @@RUN@@ -o out.txt (stop it with Ctrl-C)
 * Prints: one line per event: CPU, thread id, timestamp in nanoseconds, then
 *         "-> name(arg0, arg1, arg2, arg3, arg4)" on entry and
 *         "<- name = arg1 (+arg0)" on return, in hex: on return FBT's arg1
 *         is the return value and arg0 the return site's offset in the
 *         function.  Without CTF FBT knows no types, so every argument is a
 *         64-bit number, whether the function takes five arguments or none
 *         (amd64 passes them in rdi, rsi, rdx, rcx, r8; arm64 in x0-x4).
 */
@@HEADER@@
#pragma D option quiet

@@ENTRY@@
{
	printf("%3d %6d %d -> %s(0x%x, 0x%x, 0x%x, 0x%x, 0x%x)\n", cpu, tid, timestamp, probefunc,
	    arg0, arg1, arg2, arg3, arg4);
}

@@RETURN@@
{
	printf("%3d %6d %d <- %s = 0x%x (+0x%x)\n", cpu, tid, timestamp, probefunc, arg1, arg0);
}
