// Typeset the math that pymdownx.arithmatex (generic mode) leaves in `.arithmatex` elements:
// \( ... \) inline and \[ ... \] display. KaTeX is vendored under assets/vendor/katex/.
// throwOnError: false turns a bad formula into a visible `.katex-error` element (the browser
// test fails on any) instead of a JavaScript exception that would stop the other formulas.
(function () {
  function renderMath() {
    document.querySelectorAll(".arithmatex").forEach(function (el) {
      renderMathInElement(el, {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true },
        ],
        throwOnError: false,
      });
    });
  }
  // Material's instant navigation swaps page content without a reload; document$ fires on each.
  if (typeof document$ !== "undefined") {
    document$.subscribe(renderMath);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderMath);
  } else {
    renderMath();
  }
})();
