// MathJax 3 for pymdownx.arithmatex (generic mode): typeset only the spans and divs that
// arithmatex marked, with TeX's \( \) and \[ \] delimiters that it writes. The script itself is
// served from the site (tools/mkdocs_mathjax.py), never from a CDN.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "none"
  },
  svg: { fontCache: "global" },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex"
  }
};
