package dev.kvpc.runtime.load;

import java.util.List;

/**
 * A compiled policy that cannot be loaded, with a message written for the person who asked to load it: a jar that
 * is missing or unreadable, a manifest with a bad key, a policy whose model-shape constraints do not fit the host
 * ({@code "policy h2o needs kv-heads=8, this model has 4"}), or bytecode that uses something policy code may not
 * ({@code "refused: class gen/H2o, method onOverflow(I)V calls java/lang/System.exit(I)V, which policy code may not
 * call"}). When the bytecode verifier refuses a jar, {@link #problems()} lists every refusal, one per line of the
 * message.
 */
public final class PolicyLoadException extends Exception {
    private static final long serialVersionUID = 1L;

    /** At most this many problems are spelled out in the message; {@link #problems()} has them all. */
    static final int MAX_LISTED = 20;

    private final List<String> problems;

    public PolicyLoadException(String message) {
        super(message);
        this.problems = List.of(message);
    }

    public PolicyLoadException(String message, Throwable cause) {
        super(message, cause);
        this.problems = List.of(message);
    }

    private PolicyLoadException(List<String> problems, String message) {
        super(message);
        this.problems = problems;
    }

    /** One exception for several problems (at least one): the message has one line per problem. */
    public static PolicyLoadException of(List<String> problems) {
        if (problems.isEmpty()) throw new IllegalArgumentException("no problems to report");
        List<String> all = List.copyOf(problems);
        StringBuilder m = new StringBuilder();
        for (int i = 0; i < all.size() && i < MAX_LISTED; i++) {
            if (i > 0) m.append('\n');
            m.append(all.get(i));
        }
        if (all.size() > MAX_LISTED) m.append("\n(and ").append(all.size() - MAX_LISTED).append(" more)");
        return new PolicyLoadException(all, m.toString());
    }

    /** Every problem found, in the order found; a single element unless the bytecode verifier found several. */
    public List<String> problems() {
        return problems;
    }
}
