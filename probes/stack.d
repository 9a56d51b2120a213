/*
 * tracebridge template "stack": where the CPUs are when they run this module.
 *
 * Run:    dtrace @@RUN@@ -o out.txt (stop it with Ctrl-C)
 * Prints: when tracing stops, every distinct kernel stack seen by a 997 Hz
 *         sampler while a CPU ran the module's code, with its sample count,
 *         least frequent first: a blank line, the frames (module`func+0xoff,
 *         or a bare address where libdtrace cannot name the frame), then the
 *         count.  tracebridge resolves this module's addresses by its layout.
 *         No FBT probes are needed: this works without frame pointers too,
 *         though the stacks then skip the callers of frame-less functions.
 */
@@HEADER@@
#pragma D option quiet

profile-997
/@@PC_IN_MODULE@@/
{
	@[stack()] = count();
}
