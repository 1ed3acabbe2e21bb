# Sourced by ./kvpc and ./run-tests: finds a JDK 25 or newer and exports JAVA_HOME for it.
# Order: KVPC_JAVA_HOME, JAVA_HOME, JDKs installed beside the default `java`, then the usual per-user JDK folders.

kvpc_jdk_major() { # prints the feature version of the JDK in $1, or nothing
  local home=$1 v=""
  [ -x "$home/bin/java" ] && [ -x "$home/bin/javac" ] || return 0
  if [ -f "$home/release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([0-9][0-9]*\).*/\1/p' "$home/release" | head -n 1)
  fi
  if [ -z "$v" ]; then
    v=$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n 1)
  fi
  printf '%s' "$v"
}

kvpc_find_jdk() {
  local want=25 c v best="" bestv=0 candidates=() java_bin java_home
  [ -n "${KVPC_JAVA_HOME:-}" ] && candidates+=("$KVPC_JAVA_HOME")
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  if java_bin=$(command -v java 2>/dev/null); then
    java_home=$(dirname "$(dirname "$(readlink -f "$java_bin")")")
    candidates+=("$java_home")
    for c in "$(dirname "$java_home")"/*; do candidates+=("$c"); done
  fi
  if [ -x /usr/libexec/java_home ]; then
    c=$(/usr/libexec/java_home -v "$want+" 2>/dev/null) && candidates+=("$c")
  fi
  for c in "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/* "$HOME"/.gradle/jdks/*; do candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    [ -d "$c" ] || continue
    v=$(kvpc_jdk_major "$c")
    [ -n "$v" ] || continue
    # the first candidate given explicitly wins if it is new enough; otherwise the newest found
    if [ "$v" -ge "$want" ]; then
      if [ "$c" = "${KVPC_JAVA_HOME:-}" ] || [ "$c" = "${JAVA_HOME:-}" ]; then best=$c; bestv=$v; break; fi
      if [ "$v" -gt "$bestv" ]; then best=$c; bestv=$v; fi
    fi
  done
  if [ -z "$best" ]; then
    echo "kvpc: needs a JDK $want or newer (with javac), and found none." >&2
    echo "      Looked at KVPC_JAVA_HOME, JAVA_HOME, the JDKs beside '$(command -v java 2>/dev/null || echo java)', and ~/.sdkman, ~/.jdks." >&2
    echo "      Install a JDK $want (e.g. Temurin $want) and set JAVA_HOME to it." >&2
    return 1
  fi
  export JAVA_HOME=$best
  # Maven itself still calls sun.misc.Unsafe; keep JDK 24+ from warning about it on every run.
  export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
}

kvpc_need_maven() {
  if ! command -v mvn >/dev/null 2>&1; then
    echo "kvpc: needs Apache Maven 3.8 or newer ('mvn' is not on PATH)." >&2
    return 1
  fi
}

# The JVM options of a process that decodes with the JVM backend's kernels (`kvpc run`, `kvpc eval`, the engine
# benchmarks): the Vector API module, and C2 asked to compile the decode kernel twenty times sooner than its
# thresholds say. Until C2 has it, the kernel runs C1's code, which does not intrinsify the Vector API
# (docs/performance.md, "The first decode step").
kvpc_decode_opts=(--add-modules jdk.incubator.vector -XX:CompileCommand=quiet
  "-XX:CompileCommand=CompileThresholdScaling,dev.kvpc.backend.jvm.DecodeTemplate*::*,0.05")

# Preloads the JDK's libjsig (its signal chaining) for the java this shell starts, on Linux where the JDK has it: a
# native library that installs signal handlers (LLVM, inside an OpenCL platform) then chains them behind the JVM's.
kvpc_signal_chaining() {
  local jsig="$JAVA_HOME/lib/libjsig.so"
  if [ "$(uname -s)" = Linux ] && [ -f "$jsig" ]; then
    export LD_PRELOAD="$jsig${LD_PRELOAD:+:$LD_PRELOAD}"
  fi
}
