;; Adam (model/optimizer.ts: optimizerStep's clip, Adam and, under parameterisation = "linear", the projection, in one
;; pass over a part; under "log" it steps θ = ln w, and optimizerStep takes e^θ after it), compiled to WebAssembly with
;; 128-bit SIMD over two elements at a time. It performs exactly adamPart's
;; operations, in the same order, with the same float32 rounding of what it stores, so the two give bit-identical
;; results: arithmetic in float64 lanes, moments and weights loaded from and stored to float32 (two floats = 64 bits
;; per vector). The step is bound by its two divisions and square root per element, which SIMD does two at a time.
;; Pointers are byte offsets into the imported memory (shared, so that several threads can each step a range of
;; the same parts: adam-kernel.ts); n (the element count) is a multiple of four, the loop body two
;; pairs (independent, so that one pair's divisions overlap the other's).
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; Per element i < n, with gᵢ = g[i]·scale (the clip coefficient):
  ;;   m' = β₁m + (1 − β₁)gᵢ,  v' = β₂v + ((1 − β₂)gᵢ)gᵢ  (stored as float32),
  ;;   w' = w − (stepSize·m')/(√v'/√(1 − β₂ᵗ) + eps)   (m', v' as stored; w' rounded to float32),
  ;;   then, when $project ≠ 0, w' < 0 becomes 0.
  ;; Returns the number of weights the projection moved, or −1 when some w' is not finite (checked before the
  ;; projection): Σ(w' − w') is 0 exactly while every w' is finite, NaN otherwise.
  (func (export "adamLinear")
    (param $n i32) (param $g i32) (param $w i32) (param $m i32) (param $v i32) (param $w2 i32) (param $m2 i32) (param $v2 i32)
    (param $scale f64) (param $b1 f64) (param $b2 f64) (param $eps f64) (param $stepSize f64) (param $sqrtBc2 f64)
    (param $project i32)
    (result i32)
    (local $i i32) (local $o4 i32) (local $o8 i32) (local $half i32)
    (local $gi v128) (local $mi v128) (local $vi v128) (local $wi v128) (local $neg v128)
    (local $finite v128) (local $moved v128)
    (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128) (local $EPS v128) (local $SS v128)
    (local $SB v128) (local $SC v128) (local $ZERO v128)
    (local.set $B1 (f64x2.splat (local.get $b1)))
    (local.set $C1 (f64x2.splat (f64.sub (f64.const 1) (local.get $b1))))
    (local.set $B2 (f64x2.splat (local.get $b2)))
    (local.set $C2 (f64x2.splat (f64.sub (f64.const 1) (local.get $b2))))
    (local.set $EPS (f64x2.splat (local.get $eps)))
    (local.set $SS (f64x2.splat (local.get $stepSize)))
    (local.set $SB (f64x2.splat (local.get $sqrtBc2)))
    (local.set $SC (f64x2.splat (local.get $scale)))
    (local.set $ZERO (f64x2.splat (f64.const 0)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; The two pairs of this iteration: elements i, i+1 and i+2, i+3 (byte offsets o4 into float32, o8 into float64).
        (local.set $half (i32.const 0))
        (loop $pair
          (local.set $o4 (i32.add (i32.shl (local.get $i) (i32.const 2)) (i32.shl (local.get $half) (i32.const 3))))
          (local.set $o8 (i32.add (i32.shl (local.get $i) (i32.const 3)) (i32.shl (local.get $half) (i32.const 4))))
          (local.set $gi (f64x2.mul (v128.load (i32.add (local.get $g) (local.get $o8))) (local.get $SC)))
          ;; m' and v' as stored (float32 pairs in the low half).
          (local.set $mi (f32x4.demote_f64x2_zero (f64x2.add
            (f64x2.mul (local.get $B1) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $m) (local.get $o4)))))
            (f64x2.mul (local.get $C1) (local.get $gi)))))
          (v128.store64_lane 0 (i32.add (local.get $m2) (local.get $o4)) (local.get $mi))
          (local.set $vi (f32x4.demote_f64x2_zero (f64x2.add
            (f64x2.mul (local.get $B2) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $v) (local.get $o4)))))
            (f64x2.mul (f64x2.mul (local.get $C2) (local.get $gi)) (local.get $gi)))))
          (v128.store64_lane 0 (i32.add (local.get $v2) (local.get $o4)) (local.get $vi))
          ;; w' rounded to float32, back in float64 lanes for the checks.
          (local.set $wi (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.sub
            (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $w) (local.get $o4))))
            (f64x2.div
              (f64x2.mul (local.get $SS) (f64x2.promote_low_f32x4 (local.get $mi)))
              (f64x2.add (f64x2.div (f64x2.sqrt (f64x2.promote_low_f32x4 (local.get $vi))) (local.get $SB)) (local.get $EPS)))))))
          (local.set $finite (f64x2.add (local.get $finite) (f64x2.sub (local.get $wi) (local.get $wi))))
          (if (local.get $project)
            (then
              ;; Lanes where w' < 0 are all ones: subtracting them counts the moved weights; andnot zeroes those lanes.
              (local.set $neg (f64x2.lt (local.get $wi) (local.get $ZERO)))
              (local.set $moved (i64x2.sub (local.get $moved) (local.get $neg)))
              (local.set $wi (v128.andnot (local.get $wi) (local.get $neg)))))
          (v128.store64_lane 0 (i32.add (local.get $w2) (local.get $o4)) (f32x4.demote_f64x2_zero (local.get $wi)))
          (local.set $half (i32.add (local.get $half) (i32.const 1)))
          (br_if $pair (i32.lt_u (local.get $half) (i32.const 2))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next)))
    (if (result i32)
      (f64.eq (f64.add (f64x2.extract_lane 0 (local.get $finite)) (f64x2.extract_lane 1 (local.get $finite))) (f64.const 0))
      (then (i32.wrap_i64 (i64.add (i64x2.extract_lane 0 (local.get $moved)) (i64x2.extract_lane 1 (local.get $moved)))))
      (else (i32.const -1))))
)
