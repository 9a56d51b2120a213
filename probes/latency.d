/*
 * tracebridge template "latency": time from entry to return of each function.
 *
 * Run:    dtrace @@RUN@@ -o out.txt (stop it with Ctrl-C)
 * Prints: when tracing stops, three aggregations keyed by the function's name
 *         as FBT knows it (the mangled symbol): @ns, a power-of-two histogram
 *         of the nanoseconds of each call (quantize); @avg_ns, the average;
 *         @total_ns, the sum over all calls.  Times include the callees'.
 *
 * Recursion: every thread keeps, per function, its current call depth and one
 * timestamp per depth, so each return is paired with its own call's entry.
 * A call already running when tracing starts has no timestamp and is ignored.
 * Functions without a return probe cannot be timed and are left out (listed
 * below).  A function that leaves by a tail call on some path (a jmp, which
 * has no return probe) keeps that call's depth, which can pair a later return
 * of a recursive call with an older entry of the same function.
 */
@@HEADER@@
#pragma D option quiet

@@PAIRED_ENTRY@@
{
	self->depth[probefunc]++;
	self->ts[probefunc, self->depth[probefunc]] = timestamp;
}

@@PAIRED_RETURN@@
/self->ts[probefunc, self->depth[probefunc]] != 0/
{
	this->ns = timestamp - self->ts[probefunc, self->depth[probefunc]];
	@ns[probefunc] = quantize(this->ns);
	@avg_ns[probefunc] = avg(this->ns);
	@total_ns[probefunc] = sum(this->ns);
	self->ts[probefunc, self->depth[probefunc]] = 0;
	self->depth[probefunc]--;
}
