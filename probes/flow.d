/*
 * tracebridge template "flow": the calls and returns of every thread, indented
 * by call depth, like dtrace -F but per thread instead of per CPU.
 *
 * Run:    dtrace @@RUN@@ -o out.txt (stop it with Ctrl-C)
 * Prints: one line per event: CPU, thread id, timestamp in nanoseconds, then
 *         two spaces per call level and "-> name" on entry or "<- name" on
 *         return (the name as FBT knows it: the mangled symbol).  Threads
 *         interleave: sort by thread id and timestamp to read one thread.
 *         Functions without a return probe print their "->" lines only and do
 *         not change the depth; a return whose call started before tracing
 *         is not printed.
 */
@@HEADER@@
#pragma D option quiet
#pragma D option switchrate=10hz

@@PAIRED_ENTRY@@
{
	printf("%3d %6d %d %*s-> %s\n", cpu, tid, timestamp, self->indent, "", probefunc);
	self->indent += 2;
}

@@UNPAIRED_ENTRY@@
{
	printf("%3d %6d %d %*s-> %s\n", cpu, tid, timestamp, self->indent, "", probefunc);
}

@@PAIRED_RETURN@@
/self->indent > 0/
{
	self->indent -= 2;
	printf("%3d %6d %d %*s<- %s\n", cpu, tid, timestamp, self->indent, "", probefunc);
}
