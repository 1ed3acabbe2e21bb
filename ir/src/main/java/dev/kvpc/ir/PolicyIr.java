package dev.kvpc.ir;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One policy in tensor IR. A leaf policy has states, evidence, standing stores and handlers; a composed one has
 * clauses that give lanes to other policies (first clause whose guard holds wins; lanes no clause takes keep the
 * full cache). Value ids are unique within the policy.
 */
public record PolicyIr(String name, List<Param> params, Positions positions, Selection selection, List<State> states,
                       List<Observe> observes, Block standing, List<Handler> handlers, List<Clause> clauses, String variant) {
    public PolicyIr {
        params = List.copyOf(params);
        states = List.copyOf(states);
        observes = List.copyOf(observes);
        handlers = List.copyOf(handlers);
        clauses = List.copyOf(clauses);
        boolean leafItems = !states.isEmpty() || !handlers.isEmpty() || !standing.instrs().isEmpty();
        if (leafItems && !clauses.isEmpty()) throw new IllegalArgumentException("policy " + name + " both composes and acts");
    }

    public boolean isLeaf() {
        return clauses.isEmpty();
    }

    public PolicyIr withHandlers(List<Handler> hs) {
        return new PolicyIr(name, params, positions, selection, states, observes, standing, hs, clauses, variant);
    }

    public PolicyIr withStates(List<State> ss) {
        return new PolicyIr(name, params, positions, selection, ss, observes, standing, handlers, clauses, variant);
    }

    public PolicyIr withStanding(Block b) {
        return new PolicyIr(name, params, positions, selection, states, observes, b, handlers, clauses, variant);
    }

    public PolicyIr withParams(List<Param> ps) {
        return new PolicyIr(name, ps, positions, selection, states, observes, standing, handlers, clauses, variant);
    }

    public PolicyIr withObserves(List<Observe> os) {
        return new PolicyIr(name, params, positions, selection, states, os, standing, handlers, clauses, variant);
    }

    public enum Positions {
        ORIGINAL, CACHE;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    public enum Selection {
        LANE, LAYER;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    public enum ParamKind {
        INT, FLOAT, BOOL, TABLE;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    /** A parameter; {@code init} computes its default (null when it has none). */
    public record Param(String name, ParamKind kind, Computation init) {}

    /**
     * Where a state lives: with each entry, each lane, each page of a lane, or once per sequence for every lane of the
     * class ({@code MODEL}: its declared {@code layer} and {@code head} axes are cells that lanes share; a lane reads
     * and writes its own cell, see {@link State#axes}).
     */
    public enum StateScope {
        TOKEN, LANE, PAGE, MODEL;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    /**
     * A state. {@code type} includes the scope's axis ({@code token} or {@code page}). {@code pageSize} only for
     * {@code PAGE}; {@code init} null means zero. A page state whose init reduces over {@code token} is {@code derived}:
     * maintained from its page's entries.
     */
    public record State(String name, Ty.Tensor type, StateScope scope, Computation pageSize, Computation init, boolean derived) {
        public State {
            if ((scope == StateScope.PAGE) != (pageSize != null)) throw new IllegalArgumentException("page size only for page state");
        }

        /**
         * The axes of one cell of the state: its type's axes but head, token and page (what one entry, page or lane
         * holds of it: channel, group, query...).
         */
        public List<Axis> cellAxes() {
            // asked at every event: most states have none, and a state's type's axes are an immutable list already
            List<Axis> axes = type.axes();
            int cells = 0;
            for (Axis a : axes) if (a != Axis.HEAD && a != Axis.TOKEN && a != Axis.PAGE && a != Axis.LAYER) cells++;
            if (cells == 0) return List.of();
            if (cells == axes.size()) return axes;
            List<Axis> out = new java.util.ArrayList<>(cells);
            for (Axis a : axes) if (a != Axis.HEAD && a != Axis.TOKEN && a != Axis.PAGE && a != Axis.LAYER) out.add(a);
            return List.copyOf(out);
        }

        /**
         * For a {@code MODEL} state, its location axes ({@code layer}, {@code head}) as declared: the shared cells,
         * one per layer, per KV head or per lane (none: one cell for the whole model).
         */
        /**
         * Whether it is a {@code MODEL} state over tokens: one value per text position (per KV head with a {@code head}
         * axis), which a lane reads and writes at its entries' positions.
         */
        public boolean overTokens() {
            return scope == StateScope.MODEL && type.axes().contains(Axis.TOKEN);
        }

        public List<Axis> modelAxes() {
            if (scope != StateScope.MODEL) return List.of();
            List<Axis> out = new java.util.ArrayList<>(2);
            if (type.axes().contains(Axis.LAYER)) out.add(Axis.LAYER);
            if (type.axes().contains(Axis.HEAD)) out.add(Axis.HEAD);
            return List.copyOf(out);
        }

        /**
         * The axes of the state's value as code reads it, in the order every engine lays it out: the head first under
         * selection per layer, then token (per-token state) or page (per-page state), then {@link #cellAxes}.
         */
        public List<Axis> axes(boolean perLayer) {
            List<Axis> out = new java.util.ArrayList<>();
            // a model state's view from its lanes: the own cell, or under per-layer selection the layer's heads' cells
            if (perLayer && (scope != StateScope.MODEL || type.axes().contains(Axis.HEAD))) out.add(Axis.HEAD);
            if (scope == StateScope.TOKEN || overTokens()) out.add(Axis.TOKEN);
            else if (scope == StateScope.PAGE) out.add(Axis.PAGE);
            out.addAll(cellAxes());
            return out;
        }
    }

    public enum Event {
        PREFILL, CHUNK, DECODE, OVERFLOW, EVERY;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    /** {@code observe first|last(count) | all queries at prefill|chunk}; {@code count} null for all. */
    public record Observe(Op.End end, Computation count, Event at) {}

    /**
     * A handler: {@code on events} (with {@code limit} the overflow budget when OVERFLOW is among them), or
     * {@code every} (events = [EVERY], {@code limit} the period). {@code slack}: amortised eviction lets the lane
     * run {@code slack} entries over the budget between evictions (0 = evict every time).
     */
    /** {@code origin}: where in the source the handler is ({@code h2o.kvp:12}), or null. */
    public record Handler(List<Event> events, Computation limit, int slack, Block body, String origin) {
        public Handler(List<Event> events, Computation limit, int slack, Block body) {
            this(events, limit, slack, body, null);
        }

        public Handler {
            events = List.copyOf(events);
            if (events.isEmpty()) throw new IllegalArgumentException("handler without events");
            boolean needsLimit = events.contains(Event.OVERFLOW) || events.contains(Event.EVERY);
            if (needsLimit != (limit != null)) throw new IllegalArgumentException("limit only for overflow and every");
            if (slack < 0) throw new IllegalArgumentException("negative slack");
        }

        public Handler withBody(Block b) { return new Handler(events, limit, slack, b, origin); }
    }

    /** A composition clause: lanes whose {@code guard} holds get {@code target}. */
    public record Clause(Computation guard, Target target) {}

    public sealed interface Target {}

    /** Another policy by name, with its arguments (parameter name -> value). */
    public record Use(String policy, Map<String, Computation> args) implements Target {
        public Use { args = Map.copyOf(args); }
    }

    /** An inline policy body; it reads the enclosing policy's parameters. */
    public record Inline(PolicyIr body) implements Target {}
}
