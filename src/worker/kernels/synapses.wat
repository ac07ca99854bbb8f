;; Event-driven synapse passes of the sparse-cpu engine, compiled to WebAssembly; the JavaScript fallbacks in
;; sparse-cpu.ts (injectSpikesJs, gatherGradientJs) perform the same float64 operations in the same order.
;; A synapse population is a CSR matrix over presynaptic rows i; row i's spike flag for trial b is the byte at
;; flags + i·fRow + b·fTrial, which covers both the recurrent spikes ([j][b]) and the input spikes ([b][t][i]) layouts.
;; postOff[e] = post[e]·B·8 and rowSrc[i] = source(i)·P·8 are byte offsets into the flat [source][j·B + b] arrays
;; (z, delta). For fixed (target, trial) contributions are summed in increasing row order, and each gradient entry
;; in increasing trial order, whatever loop nesting a caller prefers, so results do not depend on it.
(module
  (import "env" "memory" (memory 1))

  ;; z[src(i)][post[e]][b] += W[e] for every spiking (i, b) and edge e of row i.
  (func (export "injectSpikes")
    (param $n i32) (param $trials i32) (param $flags i32) (param $fRow i32) (param $fTrial i32)
    (param $rowPtr i32) (param $postOff i32) (param $rowSrc i32) (param $w i32) (param $z i32)
    (local $i i32) (local $b i32) (local $base i32) (local $pe i32) (local $pw i32) (local $pEnd i32) (local $pStart i32)
    (local $a i32)
    (block $doneRows (loop $rows
      (br_if $doneRows (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $pStart (i32.shl (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 2)))
      (local.set $pEnd (i32.add (local.get $postOff)
        (i32.shl (i32.load (i32.add (local.get $rowPtr) (i32.shl (i32.add (local.get $i) (i32.const 1)) (i32.const 2)))) (i32.const 2))))
      (local.set $b (i32.const 0))
      (block $doneTrials (loop $trialLoop
        (br_if $doneTrials (i32.ge_u (local.get $b) (local.get $trials)))
        (if (i32.load8_u (i32.add (local.get $flags)
              (i32.add (i32.mul (local.get $i) (local.get $fRow)) (i32.mul (local.get $b) (local.get $fTrial)))))
          (then
            (local.set $base (i32.add (i32.add (local.get $z) (i32.load (i32.add (local.get $rowSrc) (i32.shl (local.get $i) (i32.const 2)))))
              (i32.shl (local.get $b) (i32.const 3))))
            (local.set $pe (i32.add (local.get $postOff) (local.get $pStart)))
            (local.set $pw (i32.add (local.get $w) (local.get $pStart)))
            (block $doneE (loop $edges
              (br_if $doneE (i32.ge_u (local.get $pe) (local.get $pEnd)))
              (local.set $a (i32.add (local.get $base) (i32.load (local.get $pe))))
              (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.promote_f32 (f32.load (local.get $pw)))))
              (local.set $pe (i32.add (local.get $pe) (i32.const 4)))
              (local.set $pw (i32.add (local.get $pw) (i32.const 4)))
              (br $edges)))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $trialLoop)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows))))

  ;; grad[e] += δ[src(i)][post[e]][b] for every spiking (i, b) and edge e of row i: the weight gradient's
  ;; outer product, touching only rows that spiked.
  (func (export "gatherGradient")
    (param $n i32) (param $trials i32) (param $flags i32) (param $fRow i32) (param $fTrial i32)
    (param $rowPtr i32) (param $postOff i32) (param $rowSrc i32) (param $delta i32) (param $grad i32)
    (local $i i32) (local $b i32) (local $base i32) (local $pe i32) (local $pg i32) (local $pEnd i32) (local $start i32)
    (block $doneRows (loop $rows
      (br_if $doneRows (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $start (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $pEnd (i32.add (local.get $postOff)
        (i32.shl (i32.load (i32.add (local.get $rowPtr) (i32.shl (i32.add (local.get $i) (i32.const 1)) (i32.const 2)))) (i32.const 2))))
      (local.set $b (i32.const 0))
      (block $doneTrials (loop $trialLoop
        (br_if $doneTrials (i32.ge_u (local.get $b) (local.get $trials)))
        (if (i32.load8_u (i32.add (local.get $flags)
              (i32.add (i32.mul (local.get $i) (local.get $fRow)) (i32.mul (local.get $b) (local.get $fTrial)))))
          (then
            (local.set $base (i32.add (i32.add (local.get $delta) (i32.load (i32.add (local.get $rowSrc) (i32.shl (local.get $i) (i32.const 2)))))
              (i32.shl (local.get $b) (i32.const 3))))
            (local.set $pe (i32.add (local.get $postOff) (i32.shl (local.get $start) (i32.const 2))))
            (local.set $pg (i32.add (local.get $grad) (i32.shl (local.get $start) (i32.const 3))))
            (block $doneE (loop $edges
              (br_if $doneE (i32.ge_u (local.get $pe) (local.get $pEnd)))
              (f64.store (local.get $pg) (f64.add (f64.load (local.get $pg)) (f64.load (i32.add (local.get $base) (i32.load (local.get $pe))))))
              (local.set $pe (i32.add (local.get $pe) (i32.const 4)))
              (local.set $pg (i32.add (local.get $pg) (i32.const 8)))
              (br $edges)))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $trialLoop)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows))))
)
