;; Hot loop of the sparse-cpu adjoint, in WebAssembly with 128-bit SIMD (four float32 lanes):
;;   ds[i·B + b] += Σ_{e ∈ row i} W[e] · δ_src(i)[post[e]][b]   for every neuron i and trial b (ds float32),
;; over δ packed as float32 rows of Bq = ceil(B/4)·4 trials per postsynaptic neuron (packDelta). Each lane sums over
;; the edges of its row in edge order, rounding every product and sum to float32, exactly as the JavaScript fallback
;; does with Math.fround, so both give bit-identical results. Trials are processed twelve (three vectors) at a time so
;; that each synapse's weight and target are loaded once per twelve trials; a last block of up to four trials
;; uses one vector. A three-vector block over fewer than twelve trials reads up to four lanes past its neuron's row:
;; the next row's values, or the zeroed slack at the end of the packed array; they are discarded.
;; All pointers are byte offsets into the module's memory; the tables they point to hold element indices, which the
;; kernels scale to bytes themselves. The JavaScript fallbacks in sparse-cpu.ts (packDeltaJs, rowDotsJs) perform the
;; same operations in the same order over the same tables.
(module
  (import "env" "memory" (memory 1))

  ;; packed[(src·N + j)·Bq + b] = δ[src·P + j·B + b] (float32), flushed to 0 below 1e-30 in magnitude (as flushTiny
  ;; in sparse-cpu.ts: keeps subnormal floats out of the product), for the recurrent sources src < sources.
  (func (export "packDelta")
    (param $delta i32) (param $packed i32) (param $n i32) (param $trials i32) (param $sources i32) (param $P i32)
    (local $src i32) (local $j i32) (local $b i32) (local $in i32) (local $out i32) (local $x f64) (local $bq i32)
    (local.set $bq (i32.shl (i32.shr_u (i32.add (local.get $trials) (i32.const 3)) (i32.const 2)) (i32.const 2)))
    (block $endS (loop $S
      (br_if $endS (i32.ge_u (local.get $src) (local.get $sources)))
      (local.set $in (i32.add (local.get $delta) (i32.shl (i32.mul (local.get $src) (local.get $P)) (i32.const 2))))
      (local.set $out (i32.add (local.get $packed) (i32.shl (i32.mul (i32.mul (local.get $src) (local.get $n)) (local.get $bq)) (i32.const 2))))
      (local.set $j (i32.const 0))
      (block $endJ (loop $J
        (br_if $endJ (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $b (i32.const 0))
        (block $endB (loop $B
          (br_if $endB (i32.ge_u (local.get $b) (local.get $trials)))
          (local.set $x (f64.promote_f32 (f32.load (i32.add (local.get $in) (i32.shl (local.get $b) (i32.const 2))))))
          (f32.store (i32.add (local.get $out) (i32.shl (local.get $b) (i32.const 2)))
            (f32.demote_f64 (select (f64.const 0) (local.get $x) (f64.lt (f64.abs (local.get $x)) (f64.const 1e-30)))))
          (local.set $b (i32.add (local.get $b) (i32.const 1)))
          (br $B)))
        (local.set $in (i32.add (local.get $in) (i32.shl (local.get $trials) (i32.const 2))))
        (local.set $out (i32.add (local.get $out) (i32.shl (local.get $bq) (i32.const 2))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $J)))
      (local.set $src (i32.add (local.get $src) (i32.const 1)))
      (br $S))))

  ;; The CSR rows k of the product (row rowOrder[k], edges rowPtr[k] .. rowPtr[k + 1]) in two per-edge tables:
  ;; target[e] = post[e]·Bq, the element of the target's row in its source's packed δ block, and weights[e] (f32).
  ;; One pointer walks target and weights together, the weight of the edge at $pt lying $wOff bytes further; edges
  ;; are taken two per iteration. scratch: 48 bytes.
  (func (export "rowDots")
    (param $rowPtr i32) (param $target i32) (param $weights i32) (param $packed i32) (param $ds i32) (param $cellType i32)
    (param $n i32) (param $trials i32) (param $scratch i32) (param $rowOrder i32)
    (local $k i32) (local $i i32) (local $b i32) (local $q i32) (local $count i32) (local $dBase i32) (local $srcBytes i32)
    (local $pt i32) (local $pEnd i32) (local $pStart i32) (local $a i32) (local $out i32) (local $bBase i32) (local $wOff i32)
    (local $wv v128) (local $a0 v128) (local $a1 v128) (local $a2 v128)
    ;; bytes of one source's packed block: N rows of Bq float32
    (local.set $srcBytes (i32.mul (local.get $n)
      (i32.shl (i32.shl (i32.shr_u (i32.add (local.get $trials) (i32.const 3)) (i32.const 2)) (i32.const 2)) (i32.const 2))))
    (local.set $wOff (i32.sub (local.get $weights) (local.get $target)))
    (block $doneRows (loop $rows
      (br_if $doneRows (i32.ge_u (local.get $k) (local.get $n)))
      (local.set $i (i32.load (i32.add (local.get $rowOrder) (i32.shl (local.get $k) (i32.const 2)))))
      (local.set $dBase (i32.add (local.get $packed)
        (i32.mul (i32.load (i32.add (local.get $cellType) (i32.shl (local.get $i) (i32.const 2)))) (local.get $srcBytes))))
      (local.set $pStart (i32.add (local.get $target) (i32.shl (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $k) (i32.const 2)))) (i32.const 2))))
      (local.set $pEnd (i32.add (local.get $target)
        (i32.shl (i32.load (i32.add (local.get $rowPtr) (i32.shl (i32.add (local.get $k) (i32.const 1)) (i32.const 2)))) (i32.const 2))))
      (local.set $b (i32.const 0))
      (block $doneBlocks (loop $blocks
        (br_if $doneBlocks (i32.ge_u (local.get $b) (local.get $trials)))
        (local.set $pt (local.get $pStart))
        ;; this block's first trial within each packed row
        (local.set $bBase (i32.add (local.get $dBase) (i32.shl (local.get $b) (i32.const 2))))
        (local.set $a0 (v128.const f32x4 0 0 0 0))
        (local.set $a1 (v128.const f32x4 0 0 0 0))
        (local.set $a2 (v128.const f32x4 0 0 0 0))
        (if (i32.gt_u (i32.sub (local.get $trials) (local.get $b)) (i32.const 4))
          (then
            ;; twelve trials from b, two edges at a time, then a last odd edge
            (block $doneE3 (loop $edges3
              (br_if $doneE3 (i32.gt_u (i32.add (local.get $pt) (i32.const 8)) (local.get $pEnd)))
              (local.set $wv (f32x4.splat (f32.load (i32.add (local.get $pt) (local.get $wOff)))))
              (local.set $a (i32.add (local.get $bBase) (i32.shl (i32.load (local.get $pt)) (i32.const 2))))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $wv) (v128.load offset=0 (local.get $a)))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $wv) (v128.load offset=16 (local.get $a)))))
              (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $wv) (v128.load offset=32 (local.get $a)))))
              (local.set $wv (f32x4.splat (f32.load offset=4 (i32.add (local.get $pt) (local.get $wOff)))))
              (local.set $a (i32.add (local.get $bBase) (i32.shl (i32.load offset=4 (local.get $pt)) (i32.const 2))))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $wv) (v128.load offset=0 (local.get $a)))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $wv) (v128.load offset=16 (local.get $a)))))
              (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $wv) (v128.load offset=32 (local.get $a)))))
              (local.set $pt (i32.add (local.get $pt) (i32.const 8)))
              (br $edges3)))
            (if (i32.lt_u (local.get $pt) (local.get $pEnd))
              (then
                (local.set $wv (f32x4.splat (f32.load (i32.add (local.get $pt) (local.get $wOff)))))
                (local.set $a (i32.add (local.get $bBase) (i32.shl (i32.load (local.get $pt)) (i32.const 2))))
                (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $wv) (v128.load offset=0 (local.get $a)))))
                (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $wv) (v128.load offset=16 (local.get $a)))))
                (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $wv) (v128.load offset=32 (local.get $a)))))))
            (local.set $count (i32.const 12)))
          (else
            ;; the last one to four trials
            (block $doneE1 (loop $edges1
              (br_if $doneE1 (i32.ge_u (local.get $pt) (local.get $pEnd)))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (f32x4.splat (f32.load (i32.add (local.get $pt) (local.get $wOff))))
                (v128.load (i32.add (local.get $bBase) (i32.shl (i32.load (local.get $pt)) (i32.const 2)))))))
              (local.set $pt (i32.add (local.get $pt) (i32.const 4)))
              (br $edges1)))
            (local.set $count (i32.const 4))))
        (v128.store offset=0 (local.get $scratch) (local.get $a0))
        (v128.store offset=16 (local.get $scratch) (local.get $a1))
        (v128.store offset=32 (local.get $scratch) (local.get $a2))
        (if (i32.gt_u (local.get $count) (i32.sub (local.get $trials) (local.get $b)))
          (then (local.set $count (i32.sub (local.get $trials) (local.get $b)))))
        ;; add the real trials' sums to ds (float32, the sum taken in float64 and rounded)
        (local.set $out (i32.add (local.get $ds) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $trials)) (local.get $b)) (i32.const 2))))
        (local.set $q (i32.const 0))
        (block $doneQ (loop $Q
          (br_if $doneQ (i32.ge_u (local.get $q) (local.get $count)))
          (f32.store (local.get $out) (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $out)))
            (f64.promote_f32 (f32.load (i32.add (local.get $scratch) (i32.shl (local.get $q) (i32.const 2))))))))
          (local.set $out (i32.add (local.get $out) (i32.const 4)))
          (local.set $q (i32.add (local.get $q) (i32.const 1)))
          (br $Q)))
        (local.set $b (i32.add (local.get $b) (local.get $count)))
        (br $blocks)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $rows))))
)
