;; Event-driven synapse passes of the sparse-cpu engine, compiled to WebAssembly; the JavaScript fallback in
;; sparse-cpu.ts (synapsePassJs) performs the same operations in the same order.
;; A synapse population is a CSR matrix over presynaptic rows i; its spike flags for one step are L bytes from
;; `flags`, byte q standing for row i = q / D of trial b = b0 + q mod D: D = B over the recurrent spikes ([j][b]),
;; D = 1 with one call per trial over the input spikes ([b][t][i]). The flags are scanned eight bytes at a time, as
;; spikes are rare. target[e] = post[e]·B and rowSrc[i] = source(i)·P are element indices into the flat float32
;; [source][j·B + b] arrays (z, delta): (src(i), post[e], b) is element rowSrc[i] + b + target[e].
;;   mode 0, injection:        z[src(i)][post[e]][b] += W[e]   (W and z float32; each sum rounded to float32)
;;   mode 1, weight gradient:  grad[e] += δ[src(i)][post[e]][b]   (grad float64), touching only rows that spiked
;; Spiking (row, trial) pairs are taken in increasing q: for a fixed target (or gradient entry) contributions are
;; summed in increasing row (trial) order, whatever the caller's order of calls over trials.
(module
  (import "env" "memory" (memory 1))

  (func $row (param $mode i32) (param $i i32) (param $b i32) (param $rowPtr i32) (param $target i32) (param $rowSrc i32)
    (param $values i32) (param $state i32)
    (local $base i32) (local $pe i32) (local $pv i32) (local $pEnd i32) (local $start i32) (local $a i32)
    (local.set $start (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $i) (i32.const 2)))))
    (local.set $pe (i32.add (local.get $target) (i32.shl (local.get $start) (i32.const 2))))
    (local.set $pEnd (i32.add (local.get $target)
      (i32.shl (i32.load (i32.add (local.get $rowPtr) (i32.shl (i32.add (local.get $i) (i32.const 1)) (i32.const 2)))) (i32.const 2))))
    ;; address of (src(i), neuron 0, trial b); an edge's target adds target[e]·4
    (local.set $base (i32.add (local.get $state)
      (i32.shl (i32.add (i32.load (i32.add (local.get $rowSrc) (i32.shl (local.get $i) (i32.const 2)))) (local.get $b)) (i32.const 2))))
    (if (i32.eqz (local.get $mode))
      (then
        (local.set $pv (i32.add (local.get $values) (i32.shl (local.get $start) (i32.const 2))))
        (block $done (loop $edges
          (br_if $done (i32.ge_u (local.get $pe) (local.get $pEnd)))
          (local.set $a (i32.add (local.get $base) (i32.shl (i32.load (local.get $pe)) (i32.const 2))))
          (f32.store (local.get $a) (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $a))) (f64.promote_f32 (f32.load (local.get $pv))))))
          (local.set $pe (i32.add (local.get $pe) (i32.const 4)))
          (local.set $pv (i32.add (local.get $pv) (i32.const 4)))
          (br $edges))))
      (else
        (local.set $pv (i32.add (local.get $values) (i32.shl (local.get $start) (i32.const 3))))
        (block $done (loop $edges
          (br_if $done (i32.ge_u (local.get $pe) (local.get $pEnd)))
          (f64.store (local.get $pv) (f64.add (f64.load (local.get $pv))
            (f64.promote_f32 (f32.load (i32.add (local.get $base) (i32.shl (i32.load (local.get $pe)) (i32.const 2)))))))
          (local.set $pe (i32.add (local.get $pe) (i32.const 4)))
          (local.set $pv (i32.add (local.get $pv) (i32.const 8)))
          (br $edges))))))

  (func (export "synapsePass")
    (param $mode i32) (param $flags i32) (param $L i32) (param $D i32) (param $b0 i32)
    (param $rowPtr i32) (param $target i32) (param $rowSrc i32) (param $values i32) (param $state i32)
    (local $q i32) (local $end i32) (local $i i32)
    (block $doneScan (loop $scan
      (br_if $doneScan (i32.ge_u (local.get $q) (local.get $L)))
      ;; skip eight silent flags at once (the last word may read past L: those bytes are ignored below)
      (if (i64.eqz (i64.load (i32.add (local.get $flags) (local.get $q))))
        (then (local.set $q (i32.add (local.get $q) (i32.const 8))) (br $scan)))
      (local.set $end (select (local.get $L) (i32.add (local.get $q) (i32.const 8))
        (i32.gt_u (i32.add (local.get $q) (i32.const 8)) (local.get $L))))
      (block $doneBytes (loop $bytes
        (br_if $doneBytes (i32.ge_u (local.get $q) (local.get $end)))
        (if (i32.load8_u (i32.add (local.get $flags) (local.get $q)))
          (then
            (local.set $i (i32.div_u (local.get $q) (local.get $D)))
            (call $row (local.get $mode) (local.get $i)
              (i32.add (local.get $b0) (i32.sub (local.get $q) (i32.mul (local.get $i) (local.get $D))))
              (local.get $rowPtr) (local.get $target) (local.get $rowSrc) (local.get $values) (local.get $state))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $bytes)))
      (br $scan))))
)
