package dev.kvpc.ir;

import java.util.BitSet;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** Instructions of a block: value definitions and the effects a policy has on its lane. */
public sealed interface Instr {
    /** {@code %id: type = op}. */
    record Def(int id, Ty type, Op op) implements Instr {
        public Def {
            if (id < 0) throw new IllegalArgumentException("negative value id");
            for (int o : op.operands()) {
                if (o >= id) throw new IllegalArgumentException("%" + id + " uses %" + o + ", not defined before it");
            }
        }
    }

    /** Retain exactly this set; everything else is evicted and its memory reused. */
    record Keep(int set) implements Instr {}

    record Evict(int set) implements Instr {}

    /** Restrict this step's attention to a set without changing memory. */
    record Attend(int set) implements Instr {}

    /** Fold {@code source} entries into {@code dest} (a set, or the compensation entry); {@code weight} -1 when none. */
    record Merge(int source, int dest, MergeBy by, int weight) implements Instr {}

    /**
     * Storage precision of keys and/or values. {@code bits} is a value id for {@code INT} (else -1); {@code group} a value
     * id or -1; {@code set} the set of a {@code FOR}/{@code EXCEPT} scope, else -1.
     */
    record Store(Set<Part> parts, Format format, int bits, QuantAxis axis, int group, Scope scope, int set) implements Instr {
        public Store {
            if (parts.isEmpty()) throw new IllegalArgumentException("store of nothing");
            parts = Set.copyOf(EnumSet.copyOf(parts));
            if ((format == Format.INT) != (bits >= 0)) throw new IllegalArgumentException("int(bits) needs bits, other formats none");
            if ((scope == Scope.FOR || scope == Scope.EXCEPT) != (set >= 0)) throw new IllegalArgumentException("scope and set disagree");
        }
    }

    record StateWrite(String state, Assign op, int value) implements Instr {}

    record If(int cond, Block then, Block otherwise) implements Instr {}

    enum MergeBy {
        NONE, COSINE_K, COSINE_V, NEAREST;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    enum Part {
        KEYS, VALUES;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    enum Format {
        F32(32), F16(16), BF16(16), INT8(8), INT4(4), INT2(2), INT(-1);

        /** Bits per element; -1 for {@code INT}, whose width is an operand. */
        public final int bits;

        Format(int bits) { this.bits = bits; }

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    enum QuantAxis {
        TOKEN, CHANNEL;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    /**
     * Which entries a {@code store} covers: all, those of its set, all but those of its set, or all but those the
     * last {@code for} or {@code except} store of the same event covered. The interpreter and the runtime both call
     * {@link #covered}.
     */
    enum Scope {
        ALL, FOR, EXCEPT, OTHERWISE;

        public String word() { return name().toLowerCase(Locale.ROOT); }

        /**
         * One head's covered entries (a new set): of {@code all}, given the store's {@code set} (for and except) and
         * the last remembered scope {@code last} (otherwise; null when none was).
         */
        public BitSet covered(BitSet all, BitSet set, BitSet last) {
            return switch (this) {
                case ALL -> (BitSet) all.clone();
                case FOR -> (BitSet) set.clone();
                case EXCEPT -> Op.SetFn.DIFF.apply((BitSet) all.clone(), set);
                case OTHERWISE -> last == null ? (BitSet) all.clone() : Op.SetFn.DIFF.apply((BitSet) all.clone(), last);
            };
        }

        /**
         * {@link #covered} when all is the run {@code [0, size)} and the store's set and the last remembered scope are
         * runs ({@link Runs}; {@link Runs#NONE} when absent): the covered entries as one run, or {@link Runs#NONE}
         * when they are not one run.
         */
        public long coveredRun(int size, long set, long last) {
            return switch (this) {
                case ALL -> Runs.of(0, size);
                case FOR -> set;
                case EXCEPT -> Op.SetFn.DIFF.run(0, size, Runs.from(set), Runs.to(set));
                case OTHERWISE -> last == Runs.NONE ? Runs.of(0, size) : Op.SetFn.DIFF.run(0, size, Runs.from(last), Runs.to(last));
            };
        }

        /** Whether a later {@code otherwise} of the event excludes what this store covers. */
        public boolean remembered() {
            return this != OTHERWISE;
        }
    }

    enum Assign {
        SET("="), ADD("+="), SUB("-="), MUL("*=");

        public final String symbol;

        Assign(String symbol) { this.symbol = symbol; }
    }

    /** Shorthand for building. */
    static List<Instr> list(Instr... instrs) {
        return List.of(instrs);
    }
}
