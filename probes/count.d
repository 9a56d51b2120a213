/*
 * tracebridge template "count": how often each function of the module is called.
 *
 * Run:    dtrace @@RUN@@ -o out.txt (stop it with Ctrl-C)
 * Prints: when tracing stops, one line per function that was called: two
 *         spaces, the function's name as FBT knows it (the mangled symbol)
 *         left-justified in 50 columns, and the number of calls in 16 columns,
 *         least called first.  The probe map (--map) gives demangled names.
 */
@@HEADER@@
#pragma D option quiet

@@ENTRY@@
{
	@calls[probefunc] = count();
}
