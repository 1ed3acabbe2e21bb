package dev.kvpc.runtime.exec;

import dev.kvpc.ir.PolicyIr;

import java.util.List;

/**
 * The order of one event of a lane class, stated once: the reference interpreter and the runtime's runner both
 * follow it, each doing the steps its own way ({@link Steps}).
 * <ol>
 *   <li>{@link #open}: first the states' initial values: each entry the event brought gets its per-token states'
 *       initial values, and each per-lane state the event's lanes do not hold yet gets its own (0 where a state has
 *       no initial value); then, at decode, the handlers that {@code attend} run, in source order, so that the step's
 *       attention is computed over the set they chose;</li>
 *   <li>the caller computes the step's attention;</li>
 *   <li>{@link #finish}: at prefill and chunk, the event's handlers in source order; at decode, the other decode
 *       handlers, then each {@code every N} handler when the decode step is a multiple of N; then each
 *       {@code overflow(B)} handler not already run for the event, when the lane holds more than B entries; then
 *       the standing {@code store} rules.</li>
 * </ol>
 * The last part ({@link #settle}: overflow, standing stores) waits for the step's last layer in a policy with
 * {@code per model} state ({@link #settlesAfterLastLayer}).
 * A handler of {@code on decode, overflow(B)} runs at decode only when the lane holds more than B entries.
 */
public final class EventOrder {
    private EventOrder() {}

    /** What running an event's parts means to one engine. */
    public interface Steps {
        /**
         * Gives the event's new entries their per-token states' initial values, and its lanes the initial values of
         * the per-lane states they do not hold yet.
         */
        void initStates();

        /** Runs handler {@code i}'s body. */
        void body(int i);

        /** Handler {@code i}'s limit: N of {@code every N}, B of {@code overflow(B)}. */
        long limit(int i);

        /**
         * The most entries a lane of the event holds now: under per-layer selection the layer's lanes may differ (a
         * shared {@code top} gives one head more), and {@code overflow(B)} runs when any of them holds more than B.
         */
        int entries();

        /** Applies the standing {@code store} rules. */
        void standing();
    }

    /** The start of an event: the states' initial values, then at decode the handlers that attend ({@code attends[i]}). */
    public static void open(List<PolicyIr.Handler> handlers, boolean[] attends, PolicyIr.Event event, Steps steps) {
        steps.initStates();
        if (event != PolicyIr.Event.DECODE) return;
        for (int i = 0; i < handlers.size(); i++) if (attends[i] && handlers.get(i).events().contains(event)) run(handlers, i, steps);
    }

    /**
     * Whether a class's events settle (their {@code overflow} handlers and standing stores) after the step's last layer
     * rather than right after their own handlers: a policy with {@code per model} state. Each layer's handlers still
     * run after its attention, in layer order; then, once every layer has run them, each layer's event settles, in layer
     * order. So a budget read from a model state at overflow sees what every layer wrote this step. For a policy
     * without model state nothing a layer does is seen by another, and settling at once gives the same lanes.
     */
    public static boolean settlesAfterLastLayer(PolicyIr p) {
        for (PolicyIr.State s : p.states()) if (s.scope() == PolicyIr.StateScope.MODEL) return true;
        return false;
    }

    /** The rest of an event, once its attention is computed: handlers, every N, overflow, standing stores. */
    public static void finish(List<PolicyIr.Handler> handlers, boolean[] attends, PolicyIr.Event event, int decodeStep, Steps steps) {
        handlers(handlers, attends, event, decodeStep, steps);
        settle(handlers, event, steps);
    }

    /** The event's handlers once its attention is computed, every N included: {@link #finish} without {@link #settle}. */
    public static void handlers(List<PolicyIr.Handler> handlers, boolean[] attends, PolicyIr.Event event, int decodeStep, Steps steps) {
        if (event != PolicyIr.Event.DECODE) {
            for (int i = 0; i < handlers.size(); i++) if (handlers.get(i).events().contains(event)) run(handlers, i, steps);
        } else {
            for (int i = 0; i < handlers.size(); i++) if (!attends[i] && handlers.get(i).events().contains(event)) run(handlers, i, steps);
            for (int i = 0; i < handlers.size(); i++) {
                if (handlers.get(i).events().contains(PolicyIr.Event.EVERY)) {
                    long n = steps.limit(i);
                    if (n > 0 && decodeStep % n == 0) run(handlers, i, steps);
                }
            }
        }
    }

    /** The end of an event: each {@code overflow(B)} handler not already run for it, then the standing stores. */
    public static void settle(List<PolicyIr.Handler> handlers, PolicyIr.Event event, Steps steps) {
        for (int i = 0; i < handlers.size(); i++) {
            PolicyIr.Handler h = handlers.get(i);
            if (h.events().contains(PolicyIr.Event.OVERFLOW) && !h.events().contains(event) && steps.entries() > steps.limit(i)) run(handlers, i, steps);
        }
        steps.standing();
    }

    private static void run(List<PolicyIr.Handler> handlers, int i, Steps steps) {
        PolicyIr.Handler h = handlers.get(i);
        // 'on decode, overflow(B)': the overflow part only when over budget
        if (h.events().contains(PolicyIr.Event.OVERFLOW) && h.events().size() > 1 && steps.entries() <= steps.limit(i)) return;
        steps.body(i);
    }
}
