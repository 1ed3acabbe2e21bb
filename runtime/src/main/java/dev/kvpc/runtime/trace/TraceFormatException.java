package dev.kvpc.runtime.trace;

import java.io.IOException;

/**
 * A trace file or text that cannot be read: says what is wrong and where, as a byte offset for the binary
 * form ({@code "at byte 1234: ..."}) or a line and column for the text form ({@code "line 3, column 14: ..."}),
 * prefixed with the file name when one is known.
 */
public final class TraceFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String source;
    private final long offset;
    private final int line;
    private final int column;
    private final String problem;

    private TraceFormatException(String source, long offset, int line, int column, String problem) {
        super(render(source, offset, line, column, problem));
        this.source = source;
        this.offset = offset;
        this.line = line;
        this.column = column;
        this.problem = problem;
    }

    private static String render(String source, long offset, int line, int column, String problem) {
        String where = offset >= 0 ? "at byte " + offset : "line " + line + ", column " + column;
        return (source == null ? "" : source + ": ") + where + ": " + problem;
    }

    /** A problem in the binary form, {@code offset} bytes from the start of the stream. */
    public static TraceFormatException atByte(long offset, String problem) {
        return new TraceFormatException(null, offset, 0, 0, problem);
    }

    /** A problem in the text form; {@code line} and {@code column} count from 1. */
    public static TraceFormatException atLine(int line, int column, String problem) {
        return new TraceFormatException(null, -1, line, column, problem);
    }

    /** The same problem, with the name of the file it came from in front of the message. */
    public TraceFormatException in(String sourceName) {
        TraceFormatException e = new TraceFormatException(sourceName, offset, line, column, problem);
        e.setStackTrace(getStackTrace());
        return e;
    }

    /** Byte offset of the problem in the binary form, or -1 for the text form. */
    public long offset() {
        return offset;
    }

    /** Line of the problem in the text form (from 1), or 0 for the binary form. */
    public int line() {
        return line;
    }

    /** Column of the problem in the text form (from 1), or 0 for the binary form. */
    public int column() {
        return column;
    }

    /** What is wrong, without the place. */
    public String problem() {
        return problem;
    }

    /** The file name given to {@link #in}, or null. */
    public String source() {
        return source;
    }
}
