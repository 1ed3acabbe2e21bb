package dev.kvpc.runtime.engine;

/**
 * Where a host's step arrays (keys, values, queries, attention outputs) are current. A host whose arithmetic keeps
 * copies of its arrays elsewhere (an OpenCL device's) says so here, so the runtime brings an array to the host only
 * when it reads it there, and a {@link RowWriter} of the same device can take the copy it already holds.
 */
public interface HostArrays {
    /** Makes the host's copy of {@code a} current (its newest values may be elsewhere). */
    void toHost(float[] a);

    /** Says the host wrote {@code a}: copies elsewhere are out of date. */
    void fromHost(float[] a);

    /** Arrays that live only on the host. */
    HostArrays HOST = new HostArrays() {
        @Override
        public void toHost(float[] a) {
        }

        @Override
        public void fromHost(float[] a) {
        }
    };
}
