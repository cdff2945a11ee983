"""Lesson 01, exercise 1: `__pow__` and `exp` for the toy `Scalar`, checked by
central differences.

Run: ``python lessons/solutions/01_scalar_pow_exp.py`` (prints the largest error;
exits 1 if it is not small).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson01 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "01_autodiff.py")


class Scalar(lesson01.Scalar):
    def __pow__(self, p: float) -> "Scalar":
        return Scalar(self.value ** p, (self,), (p * self.value ** (p - 1),))

    def exp(self) -> "Scalar":
        y = math.exp(self.value)
        return Scalar(y, (self,), (y,))  # d e^x / dx = e^x

    # the parent class builds results as lesson01.Scalar; rebuild them as this class
    def __add__(self, other: "Scalar") -> "Scalar":
        return Scalar(self.value + other.value, (self, other), (1.0, 1.0))

    def __mul__(self, other: "Scalar") -> "Scalar":
        return Scalar(self.value * other.value, (self, other),
                      (other.value, self.value))


def g(a: float) -> float:
    return math.exp(a ** 3) * a


def main() -> int:
    a0, h = 0.7, 1e-5
    a = Scalar(a0)
    y = (a ** 3).exp() * a
    y.backward()
    numeric = (g(a0 + h) - g(a0 - h)) / (2 * h)
    err = abs(a.grad - numeric)
    print(f"d/da [exp(a³)·a] at a = {a0}: autodiff {a.grad:.10f}, "
          f"central difference {numeric:.10f}, |Δ| = {err:.1e}")
    return 0 if err < 1e-8 else 1


if __name__ == "__main__":
    sys.exit(main())
