package dev.kvpc.compiler.diag;

import java.util.Collection;

/** "Did you mean": the candidate nearest a misspelt name, for the checker's notes and the CLI's usage errors alike. */
public final class Suggest {
    private Suggest() {
    }

    /** The closest candidate within edit distance 2 (or a third of the name), or null. */
    public static String nearest(String name, Collection<String> candidates) {
        String best = null;
        int bestD = Math.max(2, name.length() / 3) + 1;
        for (String c : candidates) {
            int d = distance(name, c);
            if (d < bestD && !c.equals(name)) {
                bestD = d;
                best = c;
            }
        }
        return best;
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1], cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) prev[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
