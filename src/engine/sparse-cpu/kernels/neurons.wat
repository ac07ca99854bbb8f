;; Elementwise passes of the sparse-cpu engine (see sparse-cpu.ts for the equations), compiled to WebAssembly with
;; 128-bit SIMD over two (neuron, trial) elements at a time.
;; They perform exactly the operations of the reference step and adjoint (engine/reference-step.ts, which the
;; JavaScript fallbacks in sparse-cpu.ts call), in the same order and with the same float32 rounding of stored state,
;; so both give bit-identical results: arithmetic in float64 lanes, state
;; loaded from and stored to float32 (two floats = 64 bits per vector). Every array is flat over the padded element
;; index p = j·B + b (slot-major for conductances: (c·S + l)·P + p), so each loop is a unit-stride stream; only the
;; per-(trial, neuron) summaries of the epoch (voltageMoments, spikeTrains) are written in epoch-summary.ts's layout.
;; Per-element constants (θ, U_reset, E_L, β, dt/C) are float32 arrays. Per-slot constants come from a table of
;; splatted float64 pairs: [gScale, alphaRise, alphaDecay, eSyn] × S, 16 bytes each; per-slot source offsets are byte
;; offsets of that source's row in z (forward) or delta (backward).
;; Pointers are byte offsets; P (the element count) is even.
;; The conductance clamp (simulation.conductance_clamp, reference-step.ts cobaLifStep): the forward clamps when
;; $clamp ≠ 0 and, when its mask pointer is non-zero too (the epoch's backward will need it), writes there where the
;; clamp bound; the backward reads it back when its mask pointer is non-zero. Mask layout (sparse-cpu.ts clampHist):
;; byte w of element p at mask + w·P + p, bits 2k (rise) and 2k + 1 (decay) of slot l = 4w + k.
(module
  (import "env" "memory" (memory 1))

  ;; Recurring patterns (written out in place: calls in the hot loops would not be inlined):
  ;; - float32 pair at address a as float64 lanes: (f64x2.promote_low_f32x4 (v128.load64_zero a));
  ;; - float64 lanes stored as a float32 pair: (v128.store64_lane 0 a (f32x4.demote_f64x2_zero x));
  ;; - promote(demote(x)): the value a float32 store and reload gives;
  ;; - flush: values below 1e-30 in magnitude become 0, as flushTiny in sparse-cpu.ts (subnormal arithmetic is ~100×
  ;;   slower and such values cannot matter); andnot keeps NaN (|NaN| < 1e-30 is false), as the JavaScript test does.

  ;; One forward step for every element p:
  ;;   g += ∓gs·z (pending injection); with the clamp, g_rise into [−gs, 0] and g_decay into [0, gs] (and, with a
  ;;   mask, its bits set where they were outside); G = g_rise + g_decay (recorded when gH ≠ 0); ΣG; I = Σ_l G_l (v − E_l);
  ;;   g ← α g; ṽ = E_L + (v − E_L)β − I·dt/C (recorded); s = v > θ; v' = s ? U_reset : ṽ.
  (func (export "forwardNeurons")
    (param $P i32) (param $slots i32) (param $g i32) (param $z i32) (param $gH i32)
    (param $vIn i32) (param $vOut i32) (param $sOut i32) (param $vtOut i32) (param $gsOut i32)
    (param $theta i32) (param $uReset i32) (param $eL i32) (param $beta i32) (param $k i32)
    (param $slotTable i32) (param $slotRow i32) (param $clamp i32) (param $mask i32)
    (local $p i32) (local $l i32) (local $p4 i32) (local $t i32) (local $r i32) (local $d i32)
    (local $compStride i32) (local $slotStride i32) (local $sh i32)
    (local $v v128) (local $acc v128) (local $gsum v128) (local $inj v128) (local $gr v128) (local $gd v128)
    (local $G v128) (local $el v128) (local $vt v128) (local $spike v128) (local $fx v128)
    (local $bnd v128) (local $codes v128) (local $bit v128)
    ;; bytes between consecutive slots of g (float32) and between the rise and decay blocks
    (local.set $slotStride (i32.shl (local.get $P) (i32.const 2)))
    (local.set $compStride (i32.mul (local.get $slotStride) (local.get $slots)))
    (block $endP (loop $Ploop
      (br_if $endP (i32.ge_u (local.get $p) (local.get $P)))
      (local.set $p4 (i32.shl (local.get $p) (i32.const 2)))
      (local.set $v (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $vIn) (local.get $p4)))))
      (local.set $acc (f64x2.splat (f64.const 0)))
      (local.set $gsum (f64x2.splat (f64.const 0)))
      (local.set $l (i32.const 0))
      (block $endL (loop $L
        (br_if $endL (i32.ge_u (local.get $l) (local.get $slots)))
        (local.set $t (i32.add (local.get $slotTable) (i32.shl (local.get $l) (i32.const 6))))
        (local.set $inj (f64x2.mul
          (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (i32.add (local.get $z) (i32.load (i32.add (local.get $slotRow) (i32.shl (local.get $l) (i32.const 2))))) (local.get $p4))))
          (v128.load offset=0 (local.get $t))))
        (local.set $r (i32.add (i32.add (local.get $g) (i32.mul (local.get $l) (local.get $slotStride))) (local.get $p4)))
        (local.set $d (i32.add (local.get $r) (local.get $compStride)))
        (local.set $gr (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $r))) (local.get $inj)))))
        (local.set $gd (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $d))) (local.get $inj)))))
        (if (local.get $clamp)
          (then
            ;; the clamp, as clip in reference-step.ts: pmax(x, lo) = x < lo ? lo : x, pmin(x, hi) = hi < x ? hi : x
            ;; (NaN kept); into the mask: a component is marked where the clamp changed it (x ≠ clip(x), NaN included,
            ;; as there), rise at bit 2·(l mod 4) of its element's lane ($bit, shifted on from slot to slot), decay one
            ;; bit higher
            (local.set $bnd (v128.load offset=0 (local.get $t)))
            (local.set $fx (f64x2.pmin (f64x2.pmax (local.get $gr) (f64x2.neg (local.get $bnd))) (f64x2.splat (f64.const 0))))
            (local.set $sh (i32.shl (i32.and (local.get $l) (i32.const 3)) (i32.const 1)))
            (if (local.get $mask)
              (then
                (local.set $bit (if (result v128) (local.get $sh) (then (i64x2.shl (local.get $bit) (i32.const 2))) (else (v128.const i64x2 1 1))))
                (local.set $codes (v128.or (local.get $codes) (v128.and (f64x2.ne (local.get $gr) (local.get $fx)) (local.get $bit))))))
            (local.set $gr (local.get $fx))
            (local.set $fx (f64x2.pmin (f64x2.pmax (local.get $gd) (f64x2.splat (f64.const 0))) (local.get $bnd)))
            (if (local.get $mask)
              (then
                (local.set $codes (v128.or (local.get $codes)
                  (v128.and (f64x2.ne (local.get $gd) (local.get $fx)) (i64x2.add (local.get $bit) (local.get $bit)))))
                ;; a full byte (four slots) or the last slot: the low byte of each lane is an element's byte of word l/4
                (if (i32.or (i32.eq (local.get $sh) (i32.const 6)) (i32.eq (i32.add (local.get $l) (i32.const 1)) (local.get $slots)))
                  (then
                    (v128.store16_lane 0 (i32.add (i32.add (local.get $mask) (i32.mul (i32.shr_u (local.get $l) (i32.const 2)) (local.get $P))) (local.get $p))
                      (i8x16.shuffle 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0 (local.get $codes) (local.get $codes)))
                    (local.set $codes (v128.const i64x2 0 0))))))
            (local.set $gd (local.get $fx))))
        (local.set $G (f64x2.add (local.get $gr) (local.get $gd)))
        (if (local.get $gH)
          (then (v128.store64_lane 0 (i32.add (i32.add (local.get $gH) (i32.mul (local.get $l) (local.get $slotStride))) (local.get $p4)) (f32x4.demote_f64x2_zero (local.get $G)))))
        (local.set $gsum (f64x2.add (local.get $gsum) (local.get $G)))
        (local.set $acc (f64x2.add (local.get $acc)
          (f64x2.mul (local.get $G) (f64x2.sub (local.get $v) (v128.load offset=48 (local.get $t))))))
        (v128.store64_lane 0 (local.get $r) (f32x4.demote_f64x2_zero (v128.andnot (local.tee $fx (f64x2.mul (local.get $gr) (v128.load offset=16 (local.get $t)))) (f64x2.lt (f64x2.abs (local.get $fx)) (f64x2.splat (f64.const 1e-30))))))
        (v128.store64_lane 0 (local.get $d) (f32x4.demote_f64x2_zero (v128.andnot (local.tee $fx (f64x2.mul (local.get $gd) (v128.load offset=32 (local.get $t)))) (f64x2.lt (f64x2.abs (local.get $fx)) (f64x2.splat (f64.const 1e-30))))))
        (local.set $l (i32.add (local.get $l) (i32.const 1)))
        (br $L)))
      (local.set $el (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $eL) (local.get $p4)))))
      (local.set $vt (f64x2.sub
        (f64x2.add (local.get $el) (f64x2.mul (f64x2.sub (local.get $v) (local.get $el)) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $beta) (local.get $p4))))))
        (f64x2.mul (local.get $acc) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $k) (local.get $p4)))))))
      (local.set $spike (f64x2.gt (local.get $v) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $theta) (local.get $p4))))))
      ;; spike flags: byte 0 of each 64-bit mask lane, as 0/1
      (v128.store16_lane 0 (i32.add (local.get $sOut) (local.get $p))
        (v128.and (i8x16.shuffle 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0 (local.get $spike) (local.get $spike)) (i8x16.splat (i32.const 1))))
      (v128.store64_lane 0 (i32.add (local.get $vOut) (local.get $p4)) (f32x4.demote_f64x2_zero (v128.bitselect (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $uReset) (local.get $p4)))) (local.get $vt) (local.get $spike))))
      (v128.store64_lane 0 (i32.add (local.get $vtOut) (local.get $p4)) (f32x4.demote_f64x2_zero (local.get $vt)))
      (v128.store64_lane 0 (i32.add (local.get $gsOut) (local.get $p4)) (f32x4.demote_f64x2_zero (local.get $gsum)))
      (local.set $p (i32.add (local.get $p) (i32.const 2)))
      (br $Ploop))))

  ;; One backward step (adjoint of step t) for every element p; delta must be zero and, at a chunk end, a_g too.
  ;; The adjoint state (a_v, a_g, ds, δ) and the loss coefficients are float32 arrays, like the forward state:
  ;;   a = [not chunk end] (a_v + ds·σ'(v_{t+1} − θ)) + ∂L/∂v_{t+1};  d = s ? 0 : a;  ds = −ṽ a·resetGain + ∂L/∂s
;;   (resetGain 1, or 0 with the reset gate detached);
  ;;   a_v = d (β − dt/C·ΣG);  δ_src(l) += gs_l (a_g[decay,l] − a_g[rise,l]);  a_g ← α a_g − d·dt/C·(v − E_l),
  ;;   and with the clamp (mask ≠ 0) a_g ← 0 for the components whose mask bit the forward of this step set.
  (func (export "backwardNeurons")
    (param $P i32) (param $slots i32) (param $chunkEnd i32) (param $lambda f64) (param $resetGain f64)
    (param $vIn i32) (param $vOut i32) (param $sIn i32) (param $vtIn i32) (param $gsIn i32)
    (param $av i32) (param $ag i32) (param $ds i32) (param $delta i32)
    (param $theta i32) (param $beta i32) (param $k i32) (param $spikeGrad i32) (param $devCoef i32) (param $meanCoef i32) (param $meanV i32)
    (param $slotTable i32) (param $slotRow i32) (param $mask i32)
    (local $p i32) (local $l i32) (local $p4 i32) (local $t i32) (local $r i32) (local $dd i32) (local $q i32)
    (local $compStride i32) (local $slotStride i32)
    (local $a v128) (local $vo v128) (local $den v128) (local $d v128) (local $dk v128) (local $v v128) (local $dG v128)
    (local $gr v128) (local $gd v128) (local $kk v128) (local $spike v128) (local $fx v128) (local $codes v128)
    (local.set $slotStride (i32.shl (local.get $P) (i32.const 2)))
    (local.set $compStride (i32.mul (local.get $slotStride) (local.get $slots)))
    (block $endP (loop $Ploop
      (br_if $endP (i32.ge_u (local.get $p) (local.get $P)))
      (local.set $p4 (i32.shl (local.get $p) (i32.const 2)))
            (local.set $vo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $vOut) (local.get $p4)))))
      (local.set $a (f64x2.splat (f64.const 0)))
      (if (i32.eqz (local.get $chunkEnd))
        (then
          (local.set $den (f64x2.add
            (f64x2.mul (f64x2.splat (local.get $lambda))
              (f64x2.abs (f64x2.sub (local.get $vo) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $theta) (local.get $p4)))))))
            (f64x2.splat (f64.const 1))))
          (local.set $a (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $av) (local.get $p4))))
            (f64x2.div (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $ds) (local.get $p4)))) (f64x2.mul (local.get $den) (local.get $den)))))))
      (local.set $a (f64x2.add (local.get $a)
        (f64x2.add
          (f64x2.mul (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $devCoef) (local.get $p4))))
            (f64x2.sub (local.get $vo) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $meanV) (local.get $p4))))))
          (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $meanCoef) (local.get $p4)))))))
      ;; spike flags of the two elements widened to 64-bit lane masks
      (local.set $spike (i64x2.ne
        (i64x2.extend_low_i32x4_u (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u
          (v128.load16_lane 0 (i32.add (local.get $sIn) (local.get $p)) (v128.const i64x2 0 0)))))
        (v128.const i64x2 0 0)))
      (local.set $d (v128.andnot (local.get $a) (local.get $spike)))
      (v128.store64_lane 0 (i32.add (local.get $ds) (local.get $p4)) (f32x4.demote_f64x2_zero
        (f64x2.add (f64x2.mul (f64x2.mul (f64x2.neg (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $vtIn) (local.get $p4))))) (local.get $a))
            (f64x2.splat (local.get $resetGain)))
          (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $spikeGrad) (local.get $p4)))))))
      (local.set $kk (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $k) (local.get $p4)))))
      (v128.store64_lane 0 (i32.add (local.get $av) (local.get $p4)) (f32x4.demote_f64x2_zero
        (f64x2.mul (local.get $d) (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $beta) (local.get $p4))))
          (f64x2.mul (local.get $kk) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $gsIn) (local.get $p4)))))))))
      (local.set $dk (f64x2.mul (f64x2.neg (local.get $d)) (local.get $kk)))
      (local.set $v (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $vIn) (local.get $p4)))))
      (local.set $l (i32.const 0))
      (block $endL (loop $L
        (br_if $endL (i32.ge_u (local.get $l) (local.get $slots)))
        (local.set $t (i32.add (local.get $slotTable) (i32.shl (local.get $l) (i32.const 6))))
        (local.set $r (i32.add (i32.add (local.get $ag) (i32.mul (local.get $l) (local.get $slotStride))) (local.get $p4)))
        (local.set $dd (i32.add (local.get $r) (local.get $compStride)))
        (local.set $gr (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $r))))
        (local.set $gd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $dd))))
        (local.set $q (i32.add (i32.add (local.get $delta) (i32.load (i32.add (local.get $slotRow) (i32.shl (local.get $l) (i32.const 2))))) (local.get $p4)))
        (v128.store64_lane 0 (local.get $q) (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $q)))
          (f64x2.mul (v128.load offset=0 (local.get $t)) (f64x2.sub (local.get $gd) (local.get $gr))))))
        (local.set $dG (f64x2.mul (local.get $dk) (f64x2.sub (local.get $v) (v128.load offset=48 (local.get $t)))))
        ;; both elements' mask bytes of word l/4 as i64 lanes, loaded at its first slot and shifted down by two bits
        ;; after each slot, so that this slot's rise and decay bits are bits 0 and 1 (i64x2.eq against the bit: lane
        ;; masks from native SSE4.1 operations; i64x2.shr_s is emulated on x86)
        (if (local.get $mask)
          (then
            (if (i32.eqz (i32.and (local.get $l) (i32.const 3)))
              (then (local.set $codes (i64x2.extend_low_i32x4_u (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u
                (v128.load16_lane 0 (i32.add (i32.add (local.get $mask) (i32.mul (i32.shr_u (local.get $l) (i32.const 2)) (local.get $P))) (local.get $p))
                  (v128.const i64x2 0 0))))))))))
        (local.set $fx (f64x2.add (f64x2.mul (local.get $gr) (v128.load offset=16 (local.get $t))) (local.get $dG)))
        (if (local.get $mask)
          (then (local.set $fx (v128.andnot (local.get $fx)
            (i64x2.eq (v128.and (local.get $codes) (v128.const i64x2 1 1)) (v128.const i64x2 1 1))))))
        (v128.store64_lane 0 (local.get $r) (f32x4.demote_f64x2_zero (v128.andnot (local.get $fx) (f64x2.lt (f64x2.abs (local.get $fx)) (f64x2.splat (f64.const 1e-30))))))
        (local.set $fx (f64x2.add (f64x2.mul (local.get $gd) (v128.load offset=32 (local.get $t))) (local.get $dG)))
        (if (local.get $mask)
          (then
            (local.set $fx (v128.andnot (local.get $fx)
              (i64x2.eq (v128.and (local.get $codes) (v128.const i64x2 2 2)) (v128.const i64x2 2 2))))
            (local.set $codes (i64x2.shr_u (local.get $codes) (i32.const 2)))))
        (v128.store64_lane 0 (local.get $dd) (f32x4.demote_f64x2_zero (v128.andnot (local.get $fx) (f64x2.lt (f64x2.abs (local.get $fx)) (f64x2.splat (f64.const 1e-30))))))
        (local.set $l (i32.add (local.get $l) (i32.const 1)))
        (br $L)))
      (local.set $p (i32.add (local.get $p) (i32.const 2)))
      (br $Ploop))))
  ;; The per-(trial, neuron) summaries below are written where epoch-summary.ts reads them (TrialSummaries): element
  ;; p = j·B + b at index b·N + j, for the N·B real elements only (the padding element has no summary).
  (func $summaryIndex (param $p i32) (param $N i32) (param $B i32) (result i32)
    (i32.add (i32.mul (i32.rem_u (local.get $p) (local.get $B)) (local.get $N)) (i32.div_u (local.get $p) (local.get $B))))

  ;; Mean and unbiased std over the T recorded steps of V (float32, [t][p] from address v) per element p, two-pass,
  ;; exactly as voltageMoments in epoch-summary.ts: Σ_t V in increasing t, mean = Σ/T, then Σ_t (V − mean)², std =
  ;; sqrt(Σ/(T − 1)). Results into mean[k], std[k] (float64, k = b·N + j).
  (func (export "voltageMoments") (param $v i32) (param $P i32) (param $N i32) (param $B i32) (param $steps i32)
    (param $mean i32) (param $std i32)
    (local $p i32) (local $t i32) (local $a i32) (local $row i32) (local $k i32) (local $sum v128) (local $m v128)
    (local $d v128) (local $sd v128)
    (local.set $row (i32.shl (local.get $P) (i32.const 2)))
    (block $endP (loop $Ploop
      (br_if $endP (i32.ge_u (local.get $p) (local.get $P)))
      (local.set $sum (f64x2.splat (f64.const 0)))
      (local.set $a (i32.add (local.get $v) (i32.shl (local.get $p) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $endT (loop $T
        (br_if $endT (i32.ge_u (local.get $t) (local.get $steps)))
        (local.set $sum (f64x2.add (local.get $sum) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $a)))))
        (local.set $a (i32.add (local.get $a) (local.get $row)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $T)))
      (local.set $m (f64x2.div (local.get $sum) (f64x2.splat (f64.convert_i32_u (local.get $steps)))))
      (local.set $sum (f64x2.splat (f64.const 0)))
      (local.set $a (i32.add (local.get $v) (i32.shl (local.get $p) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $endT2 (loop $T2
        (br_if $endT2 (i32.ge_u (local.get $t) (local.get $steps)))
        (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $a))) (local.get $m)))
        (local.set $sum (f64x2.add (local.get $sum) (f64x2.mul (local.get $d) (local.get $d))))
        (local.set $a (i32.add (local.get $a) (local.get $row)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $T2)))
      (local.set $sd (f64x2.sqrt (f64x2.div (local.get $sum) (f64x2.splat (f64.convert_i32_u (i32.sub (local.get $steps) (i32.const 1)))))))
      ;; lane 0 is element p, lane 1 element p + 1 (unless that is the padding element)
      (local.set $k (i32.shl (call $summaryIndex (local.get $p) (local.get $N) (local.get $B)) (i32.const 3)))
      (f64.store (i32.add (local.get $mean) (local.get $k)) (f64x2.extract_lane 0 (local.get $m)))
      (f64.store (i32.add (local.get $std) (local.get $k)) (f64x2.extract_lane 0 (local.get $sd)))
      (if (i32.lt_u (i32.add (local.get $p) (i32.const 1)) (i32.mul (local.get $N) (local.get $B)))
        (then
          (local.set $k (i32.shl (call $summaryIndex (i32.add (local.get $p) (i32.const 1)) (local.get $N) (local.get $B)) (i32.const 3)))
          (f64.store (i32.add (local.get $mean) (local.get $k)) (f64x2.extract_lane 1 (local.get $m)))
          (f64.store (i32.add (local.get $std) (local.get $k)) (f64x2.extract_lane 1 (local.get $sd)))))
      (local.set $p (i32.add (local.get $p) (i32.const 2)))
      (br $Ploop))))

  ;; Spike-train summary per element p from the recorded spikes (u8, [t][p] from address s, P per step), as
  ;; trialSummaries in epoch-summary.ts: count, first and last spike step (0 without spikes), Σ ISI and Σ ISI²
  ;; (integers, exact), at k = b·N + j.
  (func (export "spikeTrains") (param $s i32) (param $P i32) (param $N i32) (param $B i32) (param $steps i32)
    (param $count i32) (param $first i32) (param $last i32) (param $sum i32) (param $sumSq i32)
    (local $p i32) (local $n i32) (local $k i32) (local $t i32) (local $a i32) (local $c i32) (local $f i32)
    (local $l i32) (local $isi f64) (local $su f64) (local $sq f64)
    (local.set $n (i32.mul (local.get $N) (local.get $B)))
    (block $endP (loop $Ploop
      (br_if $endP (i32.ge_u (local.get $p) (local.get $n)))
      (local.set $c (i32.const 0)) (local.set $f (i32.const 0)) (local.set $l (i32.const 0))
      (local.set $su (f64.const 0)) (local.set $sq (f64.const 0))
      (local.set $a (i32.add (local.get $s) (local.get $p)))
      (local.set $t (i32.const 0))
      (block $endT (loop $T
        (br_if $endT (i32.ge_u (local.get $t) (local.get $steps)))
        (if (i32.load8_u (local.get $a))
          (then
            (if (local.get $c)
              (then
                (local.set $isi (f64.convert_i32_u (i32.sub (local.get $t) (local.get $l))))
                (local.set $su (f64.add (local.get $su) (local.get $isi)))
                (local.set $sq (f64.add (local.get $sq) (f64.mul (local.get $isi) (local.get $isi)))))
              (else (local.set $f (local.get $t))))
            (local.set $l (local.get $t))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))))
        (local.set $a (i32.add (local.get $a) (local.get $P)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $T)))
      (local.set $k (call $summaryIndex (local.get $p) (local.get $N) (local.get $B)))
      (i32.store (i32.add (local.get $count) (i32.shl (local.get $k) (i32.const 2))) (local.get $c))
      (i32.store (i32.add (local.get $first) (i32.shl (local.get $k) (i32.const 2))) (local.get $f))
      (i32.store (i32.add (local.get $last) (i32.shl (local.get $k) (i32.const 2))) (local.get $l))
      (f64.store (i32.add (local.get $sum) (i32.shl (local.get $k) (i32.const 3))) (local.get $su))
      (f64.store (i32.add (local.get $sumSq) (i32.shl (local.get $k) (i32.const 3))) (local.get $sq))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $Ploop))))
)
