package dev.kvpc.ir;

import java.util.List;
import java.util.Optional;

/** The IR of a KVP file and what it imports: policies (configs included) and attention variants. */
public record IrProgram(List<PolicyIr> policies, List<AttentionIr> variants) {
    public IrProgram {
        policies = List.copyOf(policies);
        variants = List.copyOf(variants);
    }

    public Optional<PolicyIr> policy(String name) {
        return policies.stream().filter(p -> p.name().equals(name)).findFirst();
    }

    public Optional<AttentionIr> variant(String name) {
        return variants.stream().filter(v -> v.name().equals(name)).findFirst();
    }
}
