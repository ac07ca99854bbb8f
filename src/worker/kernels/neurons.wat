;; Elementwise passes of the sparse-cpu engine (see sparse-cpu.ts for the equations), compiled to WebAssembly.
;; They perform exactly the operations of the JavaScript fallbacks in sparse-cpu.ts, in the same order and with the
;; same float32 rounding of stored state, so both give bit-identical results; WebAssembly only removes the bounds
;; checks and float32/float64 conversions that make the JavaScript loops slow. Pointers are byte offsets.
(module
  (import "env" "memory" (memory 1))

  ;; Values below 1e-30 in magnitude are set to 0, as flushTiny in sparse-cpu.ts (|x| < 1e-30 ⇔ −1e-30 < x < 1e-30):
  ;; subnormal arithmetic is ~100× slower and such values cannot matter.

  ;; One forward step for every neuron j and trial b:
  ;;   g += ∓gs·z (pending injection); G = g_rise + g_decay (recorded); I = Σ_l G_l (v − E_l); g ← α g;
  ;;   s = v > θ; v' = s ? U_reset : E_L + (v − E_L)β − I·dt/C.
  (func (export "forwardNeurons")
    (param $n i32) (param $trials i32) (param $slots i32) (param $g i32) (param $z i32) (param $gH i32)
    (param $vIn i32) (param $vOut i32) (param $sOut i32)
    (param $theta i32) (param $uReset i32) (param $eL i32) (param $beta i32) (param $dtOverC i32)
    (param $gScale i32) (param $aRise i32) (param $aDecay i32) (param $eSyn i32) (param $src i32)
    (local $j i32) (local $l i32) (local $b i32) (local $jB i32) (local $gBase i32) (local $nb i32) (local $p i32)
    (local $r i32) (local $d i32) (local $lb i32)
    (local $inj f64) (local $gr f32) (local $gd f32) (local $fx f64) (local $G f64) (local $v f64) (local $acc f64)
    (local $th f64) (local $ur f32) (local $el f64) (local $be f64) (local $k f64)
    ;; Trials outermost within a neuron, slots innermost: the current sum stays in a register. Per (j, b) the
    ;; operations and their order are those of the JavaScript loop, whose nesting differs.
    (local.set $nb (i32.mul (local.get $n) (local.get $trials)))
    (local.set $j (i32.const 0))
    (block $endJ (loop $J
      (br_if $endJ (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $jB (i32.mul (local.get $j) (local.get $trials)))
      ;; g element index of (j, c, l, b) = ((j·2 + c)·S + l)·B + b
      (local.set $gBase (i32.mul (i32.mul (local.get $jB) (local.get $slots)) (i32.const 2)))
      (local.set $p (i32.shl (local.get $j) (i32.const 2)))
      (local.set $th (f64.promote_f32 (f32.load (i32.add (local.get $theta) (local.get $p)))))
      (local.set $ur (f32.load (i32.add (local.get $uReset) (local.get $p))))
      (local.set $el (f64.promote_f32 (f32.load (i32.add (local.get $eL) (local.get $p)))))
      (local.set $be (f64.promote_f32 (f32.load (i32.add (local.get $beta) (local.get $p)))))
      (local.set $k (f64.promote_f32 (f32.load (i32.add (local.get $dtOverC) (local.get $p)))))
      (local.set $b (i32.const 0))
      (block $endB (loop $B
        (br_if $endB (i32.ge_u (local.get $b) (local.get $trials)))
        (local.set $p (i32.add (local.get $jB) (local.get $b)))
        (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $vIn) (i32.shl (local.get $p) (i32.const 2))))))
        (local.set $acc (f64.const 0))
        (local.set $l (i32.const 0))
        (block $endL (loop $L
          (br_if $endL (i32.ge_u (local.get $l) (local.get $slots)))
          ;; byte offset of slot l: rise at r + lb, decay at d + lb, z and G likewise per (j, b)
          (local.set $lb (i32.shl (local.get $l) (i32.const 2)))
          (local.set $inj (f64.mul
            (f64.load (i32.add (local.get $z) (i32.shl
              (i32.add (i32.mul (i32.load (i32.add (local.get $src) (local.get $lb))) (local.get $nb)) (local.get $p)) (i32.const 3))))
            (f64.promote_f32 (f32.load (i32.add (local.get $gScale) (local.get $lb))))))
          (local.set $r (i32.add (local.get $g) (i32.shl (i32.add (i32.add (local.get $gBase) (i32.mul (local.get $l) (local.get $trials))) (local.get $b)) (i32.const 2))))
          (local.set $d (i32.add (local.get $r) (i32.shl (i32.mul (local.get $slots) (local.get $trials)) (i32.const 2))))
          (local.set $gr (f32.demote_f64 (f64.sub (f64.promote_f32 (f32.load (local.get $r))) (local.get $inj))))
          (local.set $gd (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $d))) (local.get $inj))))
          (local.set $G (f64.add (f64.promote_f32 (local.get $gr)) (f64.promote_f32 (local.get $gd))))
          (f32.store (i32.add (local.get $gH) (i32.shl
            (i32.add (i32.mul (i32.add (i32.mul (local.get $j) (local.get $slots)) (local.get $l)) (local.get $trials)) (local.get $b)) (i32.const 2)))
            (f32.demote_f64 (local.get $G)))
          (local.set $acc (f64.add (local.get $acc)
            (f64.mul (local.get $G) (f64.sub (local.get $v) (f64.promote_f32 (f32.load (i32.add (local.get $eSyn) (local.get $lb))))))))
          (f32.store (local.get $r) (f32.demote_f64
            (select (f64.const 0) (local.tee $fx (f64.mul (f64.promote_f32 (local.get $gr)) (f64.promote_f32 (f32.load (i32.add (local.get $aRise) (local.get $lb))))))
              (f64.lt (f64.abs (local.get $fx)) (f64.const 1e-30)))))
          (f32.store (local.get $d) (f32.demote_f64
            (select (f64.const 0) (local.tee $fx (f64.mul (f64.promote_f32 (local.get $gd)) (f64.promote_f32 (f32.load (i32.add (local.get $aDecay) (local.get $lb))))))
              (f64.lt (f64.abs (local.get $fx)) (f64.const 1e-30)))))
          (local.set $l (i32.add (local.get $l) (i32.const 1)))
          (br $L)))
        (if (f64.gt (local.get $v) (local.get $th))
          (then
            (i32.store8 (i32.add (local.get $sOut) (local.get $p)) (i32.const 1))
            (f32.store (i32.add (local.get $vOut) (i32.shl (local.get $p) (i32.const 2))) (local.get $ur)))
          (else
            (i32.store8 (i32.add (local.get $sOut) (local.get $p)) (i32.const 0))
            (f32.store (i32.add (local.get $vOut) (i32.shl (local.get $p) (i32.const 2)))
              (f32.demote_f64 (f64.sub
                (f64.add (local.get $el) (f64.mul (f64.sub (local.get $v) (local.get $el)) (local.get $be)))
                (f64.mul (local.get $acc) (local.get $k)))))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $B)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $J))))

  ;; One backward step (adjoint of step t) for every neuron j and trial b; see the JavaScript fallback.
  (func (export "backwardNeurons")
    (param $n i32) (param $trials i32) (param $slots i32) (param $sources i32) (param $chunkEnd i32) (param $lambda f64)
    (param $gH i32) (param $vIn i32) (param $vOut i32) (param $sIn i32)
    (param $av i32) (param $ag i32) (param $ds i32) (param $delta i32) (param $dvt i32) (param $isum i32) (param $gsum i32)
    (param $spikeGrad i32) (param $devCoef i32) (param $meanCoef i32) (param $meanV i32)
    (param $theta i32) (param $eL i32) (param $beta i32) (param $dtOverC i32)
    (param $gScale i32) (param $aRise i32) (param $aDecay i32) (param $eSyn i32) (param $srcStart i32) (param $srcCount i32)
    (local $j i32) (local $l i32) (local $b i32) (local $jB i32) (local $gBase i32) (local $nb i32) (local $p i32) (local $q i32)
    (local $r i32) (local $dd i32) (local $h i32) (local $src i32) (local $out i32) (local $lEnd i32) (local $bj i32)
    (local $th f64) (local $el f64) (local $be f64) (local $k f64) (local $sg f64) (local $es f64) (local $G f64)
    (local $a f64) (local $den f64) (local $v f64) (local $vTilde f64) (local $d f64) (local $gs f64) (local $ar f64) (local $ad f64)
    (local $dG f64) (local $fx f64)
    (local.set $nb (i32.mul (local.get $n) (local.get $trials)))
    (local.set $j (i32.const 0))
    (block $endJ (loop $J
      (br_if $endJ (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $jB (i32.mul (local.get $j) (local.get $trials)))
      (local.set $gBase (i32.mul (i32.mul (local.get $jB) (local.get $slots)) (i32.const 2)))
      (local.set $p (i32.shl (local.get $j) (i32.const 2)))
      (local.set $th (f64.promote_f32 (f32.load (i32.add (local.get $theta) (local.get $p)))))
      (local.set $el (f64.promote_f32 (f32.load (i32.add (local.get $eL) (local.get $p)))))
      (local.set $be (f64.promote_f32 (f32.load (i32.add (local.get $beta) (local.get $p)))))
      (local.set $k (f64.promote_f32 (f32.load (i32.add (local.get $dtOverC) (local.get $p)))))
      (local.set $sg (f64.load (i32.add (local.get $spikeGrad) (i32.shl (local.get $j) (i32.const 3)))))
      (if (local.get $chunkEnd)
        (then (memory.fill (i32.add (local.get $ag) (i32.shl (local.get $gBase) (i32.const 3))) (i32.const 0)
          (i32.shl (i32.mul (i32.mul (local.get $slots) (i32.const 2)) (local.get $trials)) (i32.const 3)))))
      (memory.fill (local.get $isum) (i32.const 0) (i32.shl (local.get $trials) (i32.const 3)))
      (memory.fill (local.get $gsum) (i32.const 0) (i32.shl (local.get $trials) (i32.const 3)))
      ;; I and ΣG per trial from the recorded G_t
      (local.set $l (i32.const 0))
      (block $endL1 (loop $L1
        (br_if $endL1 (i32.ge_u (local.get $l) (local.get $slots)))
        (local.set $h (i32.add (local.get $gH) (i32.shl
          (i32.mul (i32.add (i32.mul (local.get $j) (local.get $slots)) (local.get $l)) (local.get $trials)) (i32.const 2))))
        (local.set $es (f64.promote_f32 (f32.load (i32.add (local.get $eSyn) (i32.shl (local.get $l) (i32.const 2))))))
        (local.set $b (i32.const 0))
        (block $endB1 (loop $B1
          (br_if $endB1 (i32.ge_u (local.get $b) (local.get $trials)))
          (local.set $G (f64.promote_f32 (f32.load (i32.add (local.get $h) (i32.shl (local.get $b) (i32.const 2))))))
          (local.set $q (i32.shl (local.get $b) (i32.const 3)))
          (f64.store (i32.add (local.get $isum) (local.get $q)) (f64.add (f64.load (i32.add (local.get $isum) (local.get $q)))
            (f64.mul (local.get $G) (f64.sub
              (f64.promote_f32 (f32.load (i32.add (local.get $vIn) (i32.shl (i32.add (local.get $jB) (local.get $b)) (i32.const 2)))))
              (local.get $es)))))
          (f64.store (i32.add (local.get $gsum) (local.get $q)) (f64.add (f64.load (i32.add (local.get $gsum) (local.get $q))) (local.get $G)))
          (local.set $b (i32.add (local.get $b) (i32.const 1)))
          (br $B1)))
        (local.set $l (i32.add (local.get $l) (i32.const 1)))
        (br $L1)))
      ;; membrane adjoint per trial
      (local.set $b (i32.const 0))
      (block $endB2 (loop $B2
        (br_if $endB2 (i32.ge_u (local.get $b) (local.get $trials)))
        (local.set $p (i32.add (local.get $jB) (local.get $b)))
        (local.set $q (i32.shl (local.get $b) (i32.const 3)))
        (local.set $a (f64.const 0))
        (if (i32.eqz (local.get $chunkEnd))
          (then
            (local.set $den (f64.add (f64.mul (local.get $lambda) (f64.abs (f64.sub
              (f64.promote_f32 (f32.load (i32.add (local.get $vOut) (i32.shl (local.get $p) (i32.const 2))))) (local.get $th)))) (f64.const 1)))
            (local.set $a (f64.add (f64.load (i32.add (local.get $av) (i32.shl (local.get $p) (i32.const 3))))
              (f64.div (f64.load (i32.add (local.get $ds) (i32.shl (local.get $p) (i32.const 3)))) (f64.mul (local.get $den) (local.get $den)))))))
        (local.set $bj (i32.shl (i32.add (i32.mul (local.get $b) (local.get $n)) (local.get $j)) (i32.const 3)))
        (local.set $a (f64.add (local.get $a) (f64.add
          (f64.mul (f64.load (i32.add (local.get $devCoef) (local.get $bj)))
            (f64.sub (f64.promote_f32 (f32.load (i32.add (local.get $vOut) (i32.shl (local.get $p) (i32.const 2)))))
                     (f64.load (i32.add (local.get $meanV) (local.get $bj)))))
          (f64.load (i32.add (local.get $meanCoef) (local.get $bj))))))
        (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $vIn) (i32.shl (local.get $p) (i32.const 2))))))
        (local.set $vTilde (f64.sub (f64.add (local.get $el) (f64.mul (f64.sub (local.get $v) (local.get $el)) (local.get $be)))
          (f64.mul (f64.load (i32.add (local.get $isum) (local.get $q))) (local.get $k))))
        (local.set $d (select (f64.const 0) (local.get $a) (i32.load8_u (i32.add (local.get $sIn) (local.get $p)))))
        (f64.store (i32.add (local.get $dvt) (local.get $q)) (local.get $d))
        (f64.store (i32.add (local.get $ds) (i32.shl (local.get $p) (i32.const 3)))
          (f64.add (f64.mul (f64.neg (local.get $vTilde)) (local.get $a)) (local.get $sg)))
        (f64.store (i32.add (local.get $av) (i32.shl (local.get $p) (i32.const 3)))
          (f64.mul (local.get $d) (f64.sub (local.get $be) (f64.mul (local.get $k) (f64.load (i32.add (local.get $gsum) (local.get $q)))))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $B2)))
      ;; δ per source population from a_g(t+1)
      (local.set $src (i32.const 0))
      (block $endS (loop $S
        (br_if $endS (i32.ge_u (local.get $src) (local.get $sources)))
        (local.set $out (i32.add (local.get $delta) (i32.shl (i32.add (i32.mul (local.get $src) (local.get $nb)) (local.get $jB)) (i32.const 3))))
        (memory.fill (local.get $out) (i32.const 0) (i32.shl (local.get $trials) (i32.const 3)))
        (local.set $l (i32.load (i32.add (local.get $srcStart) (i32.shl (local.get $src) (i32.const 2)))))
        (local.set $lEnd (i32.add (local.get $l) (i32.load (i32.add (local.get $srcCount) (i32.shl (local.get $src) (i32.const 2))))))
        (block $endL2 (loop $L2
          (br_if $endL2 (i32.ge_u (local.get $l) (local.get $lEnd)))
          (local.set $gs (f64.promote_f32 (f32.load (i32.add (local.get $gScale) (i32.shl (local.get $l) (i32.const 2))))))
          (local.set $r (i32.add (local.get $ag) (i32.shl (i32.add (local.get $gBase) (i32.mul (local.get $l) (local.get $trials))) (i32.const 3))))
          (local.set $dd (i32.add (local.get $ag) (i32.shl (i32.add (local.get $gBase)
            (i32.mul (i32.add (local.get $slots) (local.get $l)) (local.get $trials))) (i32.const 3))))
          (local.set $b (i32.const 0))
          (block $endB3 (loop $B3
            (br_if $endB3 (i32.ge_u (local.get $b) (local.get $trials)))
            (local.set $q (i32.shl (local.get $b) (i32.const 3)))
            (f64.store (i32.add (local.get $out) (local.get $q)) (f64.add (f64.load (i32.add (local.get $out) (local.get $q)))
              (f64.mul (local.get $gs) (f64.sub (f64.load (i32.add (local.get $dd) (local.get $q))) (f64.load (i32.add (local.get $r) (local.get $q)))))))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $B3)))
          (local.set $l (i32.add (local.get $l) (i32.const 1)))
          (br $L2)))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (br $S)))
      ;; a_g(t) = α a_g(t+1) + dG
      (local.set $l (i32.const 0))
      (block $endL3 (loop $L3
        (br_if $endL3 (i32.ge_u (local.get $l) (local.get $slots)))
        (local.set $p (i32.shl (local.get $l) (i32.const 2)))
        (local.set $ar (f64.promote_f32 (f32.load (i32.add (local.get $aRise) (local.get $p)))))
        (local.set $ad (f64.promote_f32 (f32.load (i32.add (local.get $aDecay) (local.get $p)))))
        (local.set $es (f64.promote_f32 (f32.load (i32.add (local.get $eSyn) (local.get $p)))))
        (local.set $r (i32.add (local.get $ag) (i32.shl (i32.add (local.get $gBase) (i32.mul (local.get $l) (local.get $trials))) (i32.const 3))))
        (local.set $dd (i32.add (local.get $ag) (i32.shl (i32.add (local.get $gBase)
          (i32.mul (i32.add (local.get $slots) (local.get $l)) (local.get $trials))) (i32.const 3))))
        (local.set $b (i32.const 0))
        (block $endB4 (loop $B4
          (br_if $endB4 (i32.ge_u (local.get $b) (local.get $trials)))
          (local.set $q (i32.shl (local.get $b) (i32.const 3)))
          (local.set $dG (f64.mul (f64.mul (f64.neg (f64.load (i32.add (local.get $dvt) (local.get $q)))) (local.get $k))
            (f64.sub (f64.promote_f32 (f32.load (i32.add (local.get $vIn) (i32.shl (i32.add (local.get $jB) (local.get $b)) (i32.const 2)))))
                     (local.get $es))))
          (f64.store (i32.add (local.get $r) (local.get $q))
            (select (f64.const 0) (local.tee $fx (f64.add (f64.mul (f64.load (i32.add (local.get $r) (local.get $q))) (local.get $ar)) (local.get $dG))) (f64.lt (f64.abs (local.get $fx)) (f64.const 1e-30))))
          (f64.store (i32.add (local.get $dd) (local.get $q))
            (select (f64.const 0) (local.tee $fx (f64.add (f64.mul (f64.load (i32.add (local.get $dd) (local.get $q))) (local.get $ad)) (local.get $dG))) (f64.lt (f64.abs (local.get $fx)) (f64.const 1e-30))))
          (local.set $b (i32.add (local.get $b) (i32.const 1)))
          (br $B4)))
        (local.set $l (i32.add (local.get $l) (i32.const 1)))
        (br $L3)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $J))))
)
