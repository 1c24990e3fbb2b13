//! gemmlowp's 16-bit fixed-point logistic and tanh, which TFLite's integer
//! LSTM applies to its int16 gates (`ApplySigmoid`, `ApplyTanh`). A value
//! with `ib` integer bits is `raw / 2^(15 - ib)`; results are Q0.15.
//!
//! The arithmetic follows gemmlowp's templates for `std::int16_t` step by
//! step, including where they wrap (plain `+`/`-` on raw values) and where
//! they saturate, because the LSTM's outputs are compared bit for bit.

/// Q0.15 one, which gemmlowp saturates to the largest raw value.
const ONE: i16 = i16::MAX;

/// An int32 gemmlowp constant narrowed to int16 as its
/// `GEMMLOWP_CHECKED_FIXEDPOINT_CONSTANT` does: rounded, 16 bits down.
const fn narrow(raw32: i32) -> i16 {
    let (mask, threshold) = (0xffff, 0x7fff + (raw32 < 0) as i32);
    ((raw32 >> 16) + ((raw32 & mask) > threshold) as i32) as i16
}

/// `SaturatingRoundingDoublingHighMul` on int16.
#[inline(always)]
fn mul(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    let ab = a as i32 * b as i32;
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// `RoundingDivideByPOT` on int16.
#[inline(always)]
fn divide_by_pot(x: i16, exponent: u32) -> i16 {
    let mask = (1i32 << exponent) - 1;
    let x = x as i32;
    let threshold = (mask >> 1) + (x < 0) as i32;
    ((x >> exponent) + ((x & mask) > threshold) as i32) as i16
}

/// `SaturatingRoundingMultiplyByPOT<exponent>` for a left shift.
#[inline(always)]
fn shl_saturating(x: i16, exponent: u32) -> i16 {
    (x as i32 * (1 << exponent)).clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// `RoundingHalfSum` on int16.
#[inline(always)]
fn rounding_half_sum(a: i16, b: i16) -> i16 {
    let sum = a as i32 + b as i32;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i16
}

/// `exp(a)` for `a` in `[-1/4, 0)`, Q0.15: a Taylor expansion around -1/8.
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i16) -> i16 {
    const CONSTANT_TERM: i16 = narrow(1_895_147_668); // exp(-1/8)
    const ONE_THIRD: i16 = narrow(715_827_883);
    let x = a.wrapping_add(1 << 12); // + 1/8
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = divide_by_pot(x4, 2);
    let poly = divide_by_pot(
        mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2),
        1,
    );
    CONSTANT_TERM.saturating_add(mul(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// `exp(a)` for `a <= 0` with `ib` integer bits, Q0.15.
fn exp_on_negative_values(a: i16, ib: u32) -> i16 {
    let fractional = 15 - ib;
    let one_quarter: i16 = 1 << (fractional - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(shl_saturating(
        a_mod_quarter_minus_one_quarter,
        ib,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^e) for e = -2..=4, the barrel shifter over the remainder's bits.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if ib as i32 > exponent {
            let shift = fractional as i32 + exponent;
            if remainder as i32 & (1 << shift) != 0 {
                result = mul(result, narrow(multiplier));
            }
        }
    }
    if ib > 5 {
        let clamp = narrow(-(1 << (36 - ib)));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 { ONE } else { result }
}

/// Newton-Raphson on `half_denominator = (1 + a) / 2`, in Q2.13: the
/// shared core of `1 / (1 + a)` and `(1 - a) / (1 + a)`.
fn reciprocal_of_half_denominator(a: i16) -> i16 {
    const F2_ONE: i16 = 1 << 13;
    const C48_OVER_17: i16 = narrow(1_515_870_810);
    const NEG_C32_OVER_17: i16 = narrow(-1_010_580_540);
    let half_denominator = rounding_half_sum(a, ONE);
    let mut x = C48_OVER_17.wrapping_add(mul(half_denominator, NEG_C32_OVER_17));
    for _ in 0..3 {
        let one_minus = F2_ONE.wrapping_sub(mul(half_denominator, x));
        x = x.wrapping_add(shl_saturating(mul(x, one_minus), 2));
    }
    x
}

/// `1 / (1 + a)` for `a` in `[0, 1]`, Q0.15.
fn one_over_one_plus_x_for_x_in_0_1(a: i16) -> i16 {
    // `Rescale<0>(ExactMulByPot<-1>(x))`: Q2.13 read as Q1.14, then to Q0.15.
    shl_saturating(reciprocal_of_half_denominator(a), 1)
}

/// `(1 - a) / (1 + a)` for `a` in `[0, 1]`, Q0.15.
fn one_minus_x_over_one_plus_x_for_x_in_0_1(a: i16) -> i16 {
    shl_saturating(reciprocal_of_half_denominator(a).wrapping_sub(1 << 13), 2)
}

/// gemmlowp `logistic` of a value with `ib` integer bits (`1..=6`), Q0.15.
pub fn logistic(a: i16, ib: u32) -> i16 {
    if a == 0 {
        return narrow(1 << 30);
    }
    let abs = if a > 0 { a } else { a.wrapping_neg() };
    let if_positive =
        one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(abs.wrapping_neg(), ib));
    if a > 0 {
        if_positive
    } else {
        ONE.wrapping_sub(if_positive)
    }
}

/// gemmlowp `tanh` of a value with `ib` integer bits (`0..=6`), Q0.15.
pub fn tanh(a: i16, ib: u32) -> i16 {
    if a == 0 {
        return 0;
    }
    let negative = if a < 0 { a } else { a.wrapping_neg() };
    // `ExactMulByPot<1>`: the same raw bits read with one more integer bit.
    let t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(negative, ib + 1));
    if a < 0 { t.wrapping_neg() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn real(raw: i16, ib: u32) -> f64 {
        raw as f64 / (1u32 << (15 - ib)) as f64
    }

    #[test]
    fn constants_narrow_as_gemmlowp_rounds_them() {
        assert_eq!(narrow(1 << 30), 1 << 14);
        assert_eq!(narrow(1_515_870_810), 23_130); // 48/17 in Q2.13
        assert_eq!(narrow(-1_010_580_540), -15_420); // -32/17 in Q2.13
    }

    #[test]
    fn fixed_points_of_the_functions() {
        assert_eq!(logistic(0, 3), 1 << 14);
        assert_eq!(tanh(0, 3), 0);
        // Far out, both saturate to one (Q0.15's largest value) or its mirror.
        assert!(logistic(i16::MAX, 3) > 32_700);
        assert!(logistic(i16::MIN + 1, 3) < 60);
        assert!(tanh(i16::MAX, 3) > 32_700);
        assert!(tanh(-i16::MAX, 3) < -32_700);
    }

    /// The largest amount by which `f` ever falls below a value it gave
    /// for a smaller input, over every int16.
    fn largest_fall(f: impl Fn(i16) -> i16) -> i32 {
        let (mut high, mut fall) = (i32::MIN, 0);
        for x in i16::MIN..=i16::MAX {
            let y = f(x) as i32;
            high = high.max(y);
            fall = fall.max(high - y);
        }
        fall
    }

    /// gemmlowp's int16 functions are not monotonic: the Newton-Raphson
    /// reciprocal in Q2.13 rounds at every step, and the result is then
    /// shifted up one or two bits, so neighbouring inputs can come out a few
    /// LSB the wrong way round (logistic(1299, 3) > logistic(1301, 3)). The
    /// LSTM is compared bit for bit with LiteRT, so these falls are part of
    /// the reference; what is checked is that they stay that small, which an
    /// error in a constant, a shift or a sign breaks. The bounds are this
    /// code's measured falls over every input: 8 LSB for logistic (6 from 4
    /// integer bits up), 16 for tanh (12 from 3 bits, none at 6).
    #[test]
    fn both_are_monotonic_but_for_a_few_lsb_of_rounding() {
        for ib in 1..=6 {
            let fall = largest_fall(|x| logistic(x, ib));
            assert!(
                fall <= 8,
                "logistic with {ib} integer bits falls {fall} LSB"
            );
        }
        for ib in 0..=6 {
            let fall = largest_fall(|x| tanh(x, ib));
            assert!(fall <= 16, "tanh with {ib} integer bits falls {fall} LSB");
        }
        assert_eq!(largest_fall(|x| tanh(x, 6)), 0);
    }

    proptest! {
        #[test]
        fn logistic_is_within_a_few_lsb_of_the_real_one(raw: i16) {
            let got = logistic(raw, 3) as f64 / 32768.0;
            let want = 1.0 / (1.0 + (-real(raw, 3)).exp());
            prop_assert!((got - want).abs() < 4e-4, "{raw}: {got} vs {want}");
        }

        #[test]
        fn tanh_is_within_a_few_lsb_of_the_real_one(raw: i16, ib in 0u32..=6) {
            let got = tanh(raw, ib) as f64 / 32768.0;
            let want = real(raw, ib).tanh();
            prop_assert!((got - want).abs() < 4e-4, "{raw} ({ib} bits): {got} vs {want}");
        }

        #[test]
        fn tanh_is_odd_and_logistic_symmetric(raw in -i16::MAX..=i16::MAX) {
            prop_assert_eq!(tanh(-raw, 3), -tanh(raw, 3));
            if raw != 0 {
                prop_assert_eq!(logistic(-raw, 3), i16::MAX - logistic(raw, 3));
            }
        }
    }
}
