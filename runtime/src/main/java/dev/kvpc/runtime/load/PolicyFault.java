package dev.kvpc.runtime.load;

/**
 * Code of a loaded policy jar failed: it threw, overflowed its stack, ran out of memory, or handed the runtime
 * something it never made (a set of another event, null). The policy's fault, not the host's: {@link #getMessage}
 * names the policy and what failed, the cause is what was thrown.
 */
public final class PolicyFault extends RuntimeException {
    private final String policy;

    public PolicyFault(String policy, String what, Throwable cause) {
        super("policy " + policy + " failed: " + what + ": " + describe(cause), cause);
        this.policy = policy;
    }

    /** The name of the policy whose code failed. */
    public String policy() {
        return policy;
    }

    private static String describe(Throwable t) {
        String m = t.getMessage();
        String name = t.getClass().getSimpleName();
        return m == null || m.isBlank() ? name : name + " (" + m + ")";
    }
}
