package dev.kvpc.runtime.trace;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * A plain-text form of a trace, for tiny traces written by hand in tests.
 *
 * <pre>
 * # a comment runs from '#' to the end of the line; blank lines are ignored
 * shape layers=1 heads=2 kv_heads=1 head_dim=2        first, the four sizes in any order
 * attr source hand-written                            optional attributes: a key, then the rest of the line
 * prefill                                             a step: prefill, chunk or decode, alone on its line
 *   layer 0 token 0 k 0.1 0.2 v 1 0 q 0.5 0.5 | 0.5 0.5
 *   layer 0 token 1 k 0 1 v 0 1 q 1 0 | 0 1
 * decode
 *   layer 0 k 1 1 v 2 2 q 1 0 | 0 1
 * </pre>
 *
 * <p>Each line of a step gives one token of one layer: {@code layer L}, then {@code token T} (the token's
 * sequence position; required in prefill and chunk steps, optional in decode steps, where it must be the
 * step's position), then {@code k} with {@code kv_heads * head_dim} numbers, {@code v} with as many, and
 * {@code q} with {@code heads * head_dim}, each head's channels in order, heads in order. A {@code |} may
 * separate two heads and is allowed only there. The lines of a step come in any order, but every layer of
 * every token from the step's first position up to the highest one named must appear exactly once; that
 * highest position fixes the step's size. Numbers are decimal ({@code -1.5}, {@code 2e-3}); NaN and infinities
 * are not allowed. Errors name the line and column (from 1).
 *
 * <p>{@link #print} writes this form with the shortest decimal that reads back to the same float, so
 * {@code parse(print(t)).equals(t)} for every trace.
 */
public final class TraceText {
    private static final Pattern INTEGER = Pattern.compile("0|[1-9][0-9]{0,8}");
    private static final Pattern DECIMAL = Pattern.compile("[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?");

    private TraceText() {
    }

    /** Writes the text form: shape, attributes, then each step with one line per token and layer. */
    public static String print(Trace trace) {
        TraceShape shape = trace.shape();
        StringBuilder b = new StringBuilder();
        b.append("shape ").append(shape).append('\n');
        trace.attributes().forEach((k, v) -> b.append("attr ").append(k).append(' ').append(v).append('\n'));
        for (int s = 0; s < trace.steps().size(); s++) {
            Trace.Step step = trace.steps().get(s);
            b.append(step.kind()).append('\n');
            for (int t = 0; t < step.tokens(); t++) {
                for (int layer = 0; layer < shape.layers(); layer++) {
                    b.append("  layer ").append(layer);
                    if (!(step instanceof Trace.Decode)) {
                        b.append(" token ").append(trace.start(s) + t);
                    }
                    StepData d = step.data();
                    b.append(" k");
                    numbers(b, d.rawK(layer), t, shape.kvHeads(), shape.headDim());
                    b.append(" v");
                    numbers(b, d.rawV(layer), t, shape.kvHeads(), shape.headDim());
                    b.append(" q");
                    numbers(b, d.rawQ(layer), t, shape.heads(), shape.headDim());
                    b.append('\n');
                }
            }
        }
        return b.toString();
    }

    private static void numbers(StringBuilder b, float[] a, int token, int heads, int headDim) {
        int base = token * heads * headDim;
        for (int h = 0; h < heads; h++) {
            if (h > 0) {
                b.append(" |");
            }
            for (int c = 0; c < headDim; c++) {
                b.append(' ').append(number(a[base + h * headDim + c]));
            }
        }
    }

    /** Float.toString is the shortest decimal that reads back to the same float; "1.0" is written "1". */
    private static String number(float f) {
        String s = Float.toString(f);
        return s.endsWith(".0") ? s.substring(0, s.length() - 2) : s;
    }

    /**
     * Reads the text form.
     *
     * @throws TraceFormatException naming the line and column of the first problem
     */
    public static Trace parse(String text) throws TraceFormatException {
        return new Parser(text).parse();
    }

    /** A word of a line and the column (from 1) it starts at. */
    private record Word(String text, int column) {
    }

    /** One line of a step: a layer of a token, and where it was written. */
    private record Row(float[] k, float[] v, float[] q, int line) {
    }

    /** A step being read: its kind, where its header is, and its rows by (token, layer). */
    private static final class PendingStep {
        final String kind;
        final int line;
        final int start;
        final Map<Long, Row> rows = new HashMap<>();
        int maxToken;

        PendingStep(String kind, int line, int start) {
            this.kind = kind;
            this.line = line;
            this.start = start;
            this.maxToken = start;
        }
    }

    private static final class Parser {
        final String[] lines;
        TraceShape shape;
        final Map<String, String> attributes = new TreeMap<>();
        final List<Trace.Step> steps = new ArrayList<>();
        PendingStep pending;
        int position;
        int lineNo;

        Parser(String text) {
            this.lines = text.split("\n", -1);
        }

        Trace parse() throws TraceFormatException {
            for (int i = 0; i < lines.length; i++) {
                lineNo = i + 1;
                String raw = lines[i];
                if (raw.endsWith("\r")) {
                    raw = raw.substring(0, raw.length() - 1);
                }
                int hash = raw.indexOf('#');
                String line = hash >= 0 ? raw.substring(0, hash) : raw;
                List<Word> words = words(line);
                if (words.isEmpty()) {
                    continue;
                }
                String first = words.getFirst().text();
                if (shape == null) {
                    if (!first.equals("shape")) {
                        throw error(words.getFirst(), "expected 'shape layers=.. heads=.. kv_heads=.. head_dim=..' first, found "
                                + Trace.quote(first));
                    }
                    shape = shape(words);
                    continue;
                }
                switch (first) {
                    case "shape" -> throw error(words.getFirst(), "a second 'shape' line");
                    case "attr" -> attribute(line, words);
                    case "prefill", "chunk", "decode" -> startStep(words);
                    case "layer" -> row(words);
                    default -> throw error(words.getFirst(), "expected 'attr', 'prefill', 'chunk', 'decode' or 'layer', found "
                            + Trace.quote(first));
                }
            }
            // the end of the text: after the last character of its last line
            int endLine = lines.length > 1 && lines[lines.length - 1].isEmpty() ? lines.length - 1 : lines.length;
            int endColumn = lines[endLine - 1].stripTrailing().length() + 1;
            if (shape == null) {
                throw TraceFormatException.atLine(endLine, endColumn, "no 'shape' line");
            }
            finishStep();
            if (steps.isEmpty()) {
                throw TraceFormatException.atLine(endLine, endColumn, "no steps; a trace needs at least a prefill");
            }
            try {
                return new Trace(shape, steps, attributes);
            } catch (IllegalArgumentException e) { // every rule was checked with its line above; kept as a safety net
                throw TraceFormatException.atLine(endLine, endColumn, e.getMessage());
            }
        }

        private TraceFormatException error(Word at, String problem) {
            return TraceFormatException.atLine(lineNo, at.column(), problem);
        }

        private TraceFormatException errorAfter(List<Word> words, String problem) {
            Word last = words.getLast();
            return TraceFormatException.atLine(lineNo, last.column() + last.text().length(), problem);
        }

        private static List<Word> words(String line) {
            List<Word> words = new ArrayList<>();
            int i = 0;
            while (i < line.length()) {
                if (Character.isWhitespace(line.charAt(i))) {
                    i++;
                    continue;
                }
                int start = i;
                while (i < line.length() && !Character.isWhitespace(line.charAt(i))) {
                    i++;
                }
                words.add(new Word(line.substring(start, i), start + 1));
            }
            return words;
        }

        private TraceShape shape(List<Word> words) throws TraceFormatException {
            String[] names = {"layers", "heads", "kv_heads", "head_dim"};
            int[] values = new int[names.length];
            boolean[] seen = new boolean[names.length];
            for (Word w : words.subList(1, words.size())) {
                int eq = w.text().indexOf('=');
                String name = eq < 0 ? w.text() : w.text().substring(0, eq);
                int which = List.of(names).indexOf(name);
                if (eq < 0 || which < 0) {
                    throw error(w, "expected one of layers=N, heads=N, kv_heads=N, head_dim=N, found " + Trace.quote(w.text()));
                }
                if (seen[which]) {
                    throw error(w, name + " given twice");
                }
                String number = w.text().substring(eq + 1);
                if (!INTEGER.matcher(number).matches()) {
                    throw TraceFormatException.atLine(lineNo, w.column() + eq + 1, name + " needs a whole number, found "
                            + Trace.quote(number));
                }
                seen[which] = true;
                values[which] = Integer.parseInt(number);
            }
            for (int i = 0; i < names.length; i++) {
                if (!seen[i]) {
                    throw errorAfter(words, "the shape lacks " + names[i] + "=N");
                }
            }
            try {
                return new TraceShape(values[0], values[1], values[2], values[3]);
            } catch (IllegalArgumentException e) {
                throw error(words.get(1), e.getMessage());
            }
        }

        private void attribute(String line, List<Word> words) throws TraceFormatException {
            if (pending != null) {
                throw error(words.getFirst(), "attributes come before the first step");
            }
            if (words.size() < 2) {
                throw errorAfter(words, "expected 'attr KEY VALUE'");
            }
            Word key = words.get(1);
            String value = line.substring(key.column() - 1 + key.text().length()).strip();
            String problem = Trace.attributeProblem(key.text(), value);
            if (problem != null) {
                throw error(key, problem);
            }
            if (attributes.size() == Trace.MAX_ATTRIBUTES) {
                throw error(key, "more than " + Trace.MAX_ATTRIBUTES + " attributes");
            }
            if (attributes.put(key.text(), value) != null) {
                throw error(key, "attribute " + key.text() + " given twice");
            }
        }

        private void startStep(List<Word> words) throws TraceFormatException {
            Word w = words.getFirst();
            if (words.size() > 1) {
                throw error(words.get(1), "'" + w.text() + "' stands alone on its line; its tokens follow as 'layer' lines");
            }
            finishStep();
            Trace.Step previous = steps.isEmpty() ? null : steps.getLast();
            String order = switch (w.text()) {
                case "prefill" -> previous == null ? null : "a prefill can only be the first step";
                case "chunk" -> previous == null || previous instanceof Trace.Chunk ? null
                        : "a chunk can only be the first step or follow a chunk";
                default -> previous != null ? null : "a trace starts with a prefill or a chunk, not a decode step";
            };
            if (order != null) {
                throw error(w, order);
            }
            pending = new PendingStep(w.text(), lineNo, position);
        }

        private void row(List<Word> words) throws TraceFormatException {
            if (pending == null) {
                throw error(words.getFirst(), "a 'layer' line before any 'prefill', 'chunk' or 'decode'");
            }
            Cursor c = new Cursor(words);
            c.next(); // "layer"
            Word layerWord = c.peek("a layer number after 'layer'");
            int layer = c.integer("a layer number");
            if (layer >= shape.layers()) {
                throw error(layerWord, "layer " + layer + " outside 0.." + (shape.layers() - 1));
            }
            boolean decode = pending.kind.equals("decode");
            int token = pending.start;
            Word tokenWord = null;
            if (c.at("token")) {
                c.next();
                tokenWord = c.peek("a position after 'token'");
                token = c.integer("a position");
                if (decode && token != pending.start) {
                    throw error(tokenWord, "this decode step is at position " + pending.start + ", not " + token);
                }
                if (token < pending.start) {
                    throw error(tokenWord, "position " + token + " belongs to an earlier step; this " + pending.kind
                            + " starts at position " + pending.start);
                }
            } else if (!decode) {
                throw error(c.peek("'token' after the layer"), "expected 'token POSITION' after the layer in a "
                        + pending.kind + " step");
            }
            float[] k = c.vector("k", shape.kvHeads(), "kv_heads");
            float[] v = c.vector("v", shape.kvHeads(), "kv_heads");
            float[] q = c.vector("q", shape.heads(), "heads");
            if (c.hasNext()) {
                throw error(c.peek(""), "unexpected " + Trace.quote(c.peek("").text()) + " after the queries");
            }
            long key = ((long) token << 32) | layer;
            Row old = pending.rows.put(key, new Row(k, v, q, lineNo));
            if (old != null) {
                throw error(tokenWord != null ? tokenWord : layerWord, "layer " + layer + " of position " + token
                        + " is given twice (first on line " + old.line() + ")");
            }
            pending.maxToken = Math.max(pending.maxToken, token);
        }

        private void finishStep() throws TraceFormatException {
            if (pending == null) {
                return;
            }
            PendingStep p = pending;
            pending = null;
            long count = (long) p.maxToken - p.start + 1;
            for (long t = p.start; t <= p.maxToken; t++) {
                for (int layer = 0; layer < shape.layers(); layer++) {
                    if (!p.rows.containsKey((t << 32) | layer)) {
                        throw TraceFormatException.atLine(p.line, 1, "the " + p.kind + " from line " + p.line
                                + " has no line for layer " + layer + " of position " + t
                                + (p.kind.equals("decode") ? "" : " (its positions run " + p.start + ".." + p.maxToken + ")"));
                    }
                }
            }
            if (p.start + count > Integer.MAX_VALUE) {
                throw TraceFormatException.atLine(p.line, 1, "more than " + Integer.MAX_VALUE + " tokens");
            }
            int tokens = (int) count;
            int kvWidth = shape.kvWidth();
            int qWidth = shape.qWidth();
            float[][] k = new float[shape.layers()][tokens * kvWidth];
            float[][] v = new float[shape.layers()][tokens * kvWidth];
            float[][] q = new float[shape.layers()][tokens * qWidth];
            for (int t = 0; t < tokens; t++) {
                for (int layer = 0; layer < shape.layers(); layer++) {
                    Row r = p.rows.get(((long) (p.start + t) << 32) | layer);
                    System.arraycopy(r.k(), 0, k[layer], t * kvWidth, kvWidth);
                    System.arraycopy(r.v(), 0, v[layer], t * kvWidth, kvWidth);
                    System.arraycopy(r.q(), 0, q[layer], t * qWidth, qWidth);
                }
            }
            StepData data = StepData.adopt(shape, tokens, k, v, q);
            steps.add(switch (p.kind) {
                case "prefill" -> new Trace.Prefill(data);
                case "chunk" -> new Trace.Chunk(data);
                default -> new Trace.Decode(data);
            });
            position = p.start + tokens;
        }

        /** Walks the words of one 'layer' line. */
        private final class Cursor {
            final List<Word> words;
            int i;

            Cursor(List<Word> words) {
                this.words = words;
            }

            boolean hasNext() {
                return i < words.size();
            }

            boolean at(String text) {
                return hasNext() && words.get(i).text().equals(text);
            }

            Word next() {
                return words.get(i++);
            }

            /** The current word; at the end of the line, an error saying {@code expected} is missing. */
            Word peek(String expected) throws TraceFormatException {
                if (!hasNext()) {
                    throw errorAfter(words, "expected " + expected + ", found the end of the line");
                }
                return words.get(i);
            }

            int integer(String what) throws TraceFormatException {
                Word w = peek(what);
                if (!INTEGER.matcher(w.text()).matches()) {
                    throw error(w, "expected " + what + " (a whole number), found " + Trace.quote(w.text()));
                }
                i++;
                return Integer.parseInt(w.text());
            }

            /** {@code name} then heads x head_dim numbers, with '|' allowed between heads only. */
            float[] vector(String name, int heads, String headsName) throws TraceFormatException {
                Word label = peek("'" + name + "'");
                if (!label.text().equals(name)) {
                    throw error(label, "expected '" + name + "', found " + Trace.quote(label.text()));
                }
                i++;
                int headDim = shape.headDim();
                float[] out = new float[heads * headDim];
                String count = out.length + " numbers after '" + name + "' (" + headsName + " " + heads + " x head_dim "
                        + headDim + ")";
                int n = 0;
                while (hasNext() && n <= out.length) {
                    Word w = words.get(i);
                    if (w.text().equals("|")) {
                        if (n == 0 || n == out.length || n % headDim != 0) {
                            throw error(w, "'|' separates heads; here it falls after " + n + " of the " + count);
                        }
                        i++;
                        continue;
                    }
                    if (!DECIMAL.matcher(w.text()).matches()) {
                        break;
                    }
                    if (n == out.length) {
                        throw error(w, "more than " + count);
                    }
                    float f = Float.parseFloat(w.text());
                    if (!Float.isFinite(f)) {
                        throw error(w, Trace.quote(w.text()) + " does not fit a float");
                    }
                    out[n++] = f;
                    i++;
                }
                if (n < out.length) {
                    if (hasNext()) {
                        throw error(words.get(i), "expected " + count + ", found " + n + " then " + Trace.quote(words.get(i).text()));
                    }
                    throw errorAfter(words, "expected " + count + ", found " + n);
                }
                return out;
            }
        }
    }
}
