package dev.kvpc.runtime.store;

import org.junit.jupiter.api.Test;

import static dev.kvpc.runtime.store.QuantSpec.Axis.CHANNEL;
import static dev.kvpc.runtime.store.QuantSpec.Axis.TOKEN;
import static org.junit.jupiter.api.Assertions.*;

/** The byte accounting against the hand-computed MemoryModel figures of docs/ir.md ("Memory accounting"). */
class StoreLayoutTest {
    private static final int HEAD_DIM = 128;
    /** Llama-3-8B: 32 layers x 8 KV heads. */
    private static final long LANES = 32 * 8;

    @Test
    void kiviAtHeadDim128Group32() {
        QuantSpec keys = new QuantSpec(Precision.INT2, CHANNEL, 32), values = new QuantSpec(Precision.INT2, TOKEN, 32);
        QuantSpec host = QuantSpec.of(Precision.F16);
        // 32 B packed per token per part at 2 bits
        assertEquals(32, StoreLayout.bytesPerToken(keys, HEAD_DIM));
        assertEquals(32, StoreLayout.bytesPerToken(values, HEAD_DIM));
        // key scales: 128 x 4 B per 32-token block (16 B per token amortised); value scales: 4 groups x 4 B per token
        assertEquals(128 * 4, StoreLayout.scaleBytesPerBlock(keys, HEAD_DIM));
        assertEquals(16, StoreLayout.scaleBytesPerToken(keys, HEAD_DIM));
        assertEquals(4 * 4, StoreLayout.scaleBytesPerToken(values, HEAD_DIM));
        assertEquals(256, StoreLayout.bytesPerToken(host, HEAD_DIM));
        assertEquals(0, StoreLayout.scaleBytesPerToken(host, HEAD_DIM));

        // the docs/ir.md row: 4096-token prompt, residual 128 at f16, the rest quantised (124 full key blocks)
        long quantised = 4096 - 128;
        long packedAndResidual = quantised * (StoreLayout.bytesPerToken(keys, HEAD_DIM) + StoreLayout.bytesPerToken(values, HEAD_DIM))
                + 128 * 2 * StoreLayout.bytesPerToken(host, HEAD_DIM);
        long scales = StoreLayout.scaleBytes(keys, HEAD_DIM, quantised) + StoreLayout.scaleBytes(values, HEAD_DIM, quantised);
        assertEquals(319_488, packedAndResidual);
        assertEquals(126_976, scales);
        assertEquals(114_294_784, LANES * (packedAndResidual + scales));
        // amortised per-token figures agree with the exact ones on full blocks
        assertEquals(StoreLayout.scaleBytes(keys, HEAD_DIM, quantised), quantised * StoreLayout.scaleBytesPerToken(keys, HEAD_DIM));
        // a partial key block has no scales yet
        assertEquals(124 * 512, StoreLayout.scaleBytes(keys, HEAD_DIM, quantised + 31));
    }

    @Test
    void fullF16AndH2oEntries() {
        QuantSpec f16 = QuantSpec.of(Precision.F16);
        // h2o budget 512: 512 entries x 512 B (keys and values at f16) per lane
        assertEquals(512, 2 * StoreLayout.bytesPerToken(f16, HEAD_DIM));
        assertEquals(512 * 512 + 2_048, 512 * 2 * StoreLayout.rowBytes(f16, HEAD_DIM) + 2_048);
        assertEquals(264_192L * LANES, 67_633_152L);
        // the full cache the ratios are taken against: 4096 tokens x 512 B x 256 lanes
        assertEquals(0.2129, 114_294_784.0 / (4096L * 2 * StoreLayout.bytesPerToken(f16, HEAD_DIM) * LANES), 5e-5);
        assertEquals(512, StoreLayout.bytesPerToken(QuantSpec.of(Precision.F32), HEAD_DIM));
        assertEquals(256, StoreLayout.bytesPerToken(QuantSpec.of(Precision.BF16), HEAD_DIM));
    }

    @Test
    void packedElementsTakeBitsOver8BytesRoundedUpPerRow() {
        for (Precision p : Precision.values()) {
            QuantSpec spec = p.isInteger() ? new QuantSpec(p, TOKEN, 1) : QuantSpec.of(p);
            assertEquals(HEAD_DIM * p.bits() / 8, StoreLayout.bytesPerToken(spec, HEAD_DIM), p.toString());
        }
        assertEquals(2, StoreLayout.bytesPerToken(new QuantSpec(Precision.INT2, TOKEN, 5), 5)); // 10 bits -> 2 bytes
        assertEquals(3, StoreLayout.bytesPerToken(new QuantSpec(Precision.INT4, CHANNEL, 7), 5)); // 20 bits -> 3 bytes
        // per-channel amortisation rounds up when the block's scales do not divide evenly
        assertEquals(171, StoreLayout.scaleBytesPerToken(new QuantSpec(Precision.INT4, CHANNEL, 3), HEAD_DIM)); // 512 / 3
        assertEquals(3 * 4, StoreLayout.scaleBytesPerToken(new QuantSpec(Precision.INT8, TOKEN, 2), 6));
    }

    @Test
    void codecsStoreExactlyTheAccountedBytes() {
        int[] dims = {128, 64, 12, 5};
        for (Precision p : Precision.values()) {
            for (int d : dims) {
                for (int g : new int[] {1, d, 32}) {
                    if (p.isInteger() && d % g == 0) {
                        QuantSpec spec = new QuantSpec(p, TOKEN, g);
                        TokenGroupCodec codec = new TokenGroupCodec(spec, d);
                        assertEquals(StoreLayout.bytesPerToken(spec, d) + StoreLayout.scaleBytesPerToken(spec, d), codec.rowBytes());
                        assertEquals(StoreLayout.rowBytes(spec, d), codec.rowBytes());
                        assertEquals(StoreLayout.scaleBytesPerToken(spec, d), codec.paramBytes());
                    }
                    if (p.isInteger()) {
                        QuantSpec spec = new QuantSpec(p, CHANNEL, g);
                        ChannelBlockCodec codec = ChannelBlockCodec.of(spec, d);
                        assertEquals(StoreLayout.blockBytes(spec, d), codec.blockBytes());
                        assertEquals(StoreLayout.scaleBytes(spec, d, g) + g * StoreLayout.bytesPerToken(spec, d), codec.blockBytes());
                        assertEquals(StoreLayout.bytesPerToken(spec, d), codec.rowCodeBytes());
                    } else {
                        QuantSpec spec = QuantSpec.of(p);
                        assertEquals(StoreLayout.rowBytes(spec, d), RowCodec.of(spec, d).rowBytes());
                    }
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> StoreLayout.rowBytes(new QuantSpec(Precision.INT2, CHANNEL, 32), 128));
        assertThrows(IllegalArgumentException.class, () -> StoreLayout.scaleBytesPerBlock(new QuantSpec(Precision.INT2, TOKEN, 32), 128));
    }
}
