"""The night report's style sheet: inline, light and dark.

The page loads nothing, so its style travels inside it (:mod:`nightlog.report.html`
writes :data:`STYLE_SHEET` into its ``<style>``). The colours are custom properties
of ``:root``: dark mode follows the system's ``prefers-color-scheme``, and the
page's ``#dark-mode`` checkbox switches to the other scheme (CSS ``:has``, no
script). The classes named here are the ones the renderer writes: ``summary``,
``master``, ``science`` (``poor`` rows), ``outlier``, ``flag``, ``path``, ``none``,
and the timeline's ``tl-*`` and legend's ``lg-*``.
"""

__all__ = ["STYLE_SHEET"]

#: The page's whole style sheet, as the ``<style>`` element's text.
STYLE_SHEET = """
:root { --bg: #fff; --fg: #1d2430; --muted: #5a6475; --faint: #8a93a3; --line: #d5dbe5;
        --head: #f3f5f9; --card: #eef2f8; --badbg: #fde8e8; --bad: #b00020;
        --poorbg: #fff1e6; --accent: #2a5db0; color-scheme: light; }
:root:has(#dark-mode:checked) { --bg: #10141b; --fg: #d8dee9; --muted: #9aa5b8;
        --faint: #6f7a8c; --line: #2e3644; --head: #1a202b; --card: #1b2230;
        --badbg: #4a1b22; --bad: #ff7a8a; --poorbg: #3a2616; --accent: #7fb0ff;
        color-scheme: dark; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #10141b; --fg: #d8dee9; --muted: #9aa5b8; --faint: #6f7a8c; --line: #2e3644;
          --head: #1a202b; --card: #1b2230; --badbg: #4a1b22; --bad: #ff7a8a;
          --poorbg: #3a2616; --accent: #7fb0ff; color-scheme: dark; }
  :root:has(#dark-mode:checked) { --bg: #fff; --fg: #1d2430; --muted: #5a6475;
          --faint: #8a93a3; --line: #d5dbe5; --head: #f3f5f9; --card: #eef2f8;
          --badbg: #fde8e8; --bad: #b00020; --poorbg: #fff1e6; --accent: #2a5db0;
          color-scheme: light; }
}
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: var(--fg);
       background: var(--bg); }
a { color: var(--accent); }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; margin: 1.6em 0 .5em; border-bottom: 2px solid var(--line); }
.meta { color: var(--muted); margin: 0 0 1em; }
.theme { float: right; color: var(--muted); font-size: .9em; cursor: pointer; }
.summary { display: flex; flex-wrap: wrap; gap: .6em; margin: .8em 0; }
.summary div { background: var(--card); border-radius: 6px; padding: .4em .8em; }
.summary b { font-size: 1.25em; display: block; }
.summary .bad { background: var(--badbg); }
table { border-collapse: collapse; margin: .4em 0; }
th, td { border: 1px solid var(--line); padding: .25em .55em; text-align: left;
         vertical-align: top; }
th { background: var(--head); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.masters { display: flex; flex-wrap: wrap; gap: 1em; }
.master { border: 1px solid var(--line); border-radius: 6px; padding: .6em; flex: 1 1 520px;
          max-width: 640px; }
.master .body > div { min-width: 0; }
.master h3 { margin: 0 0 .4em; font-size: 1.05em; }
.master .body { display: flex; gap: .8em; align-items: flex-start; }
img { image-rendering: auto; background: #000; display: block; }
img.trend { background: #fff; max-width: 100%; height: auto; }
.trends { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
figcaption { font-size: .85em; color: var(--muted); }
.outlier { color: var(--bad); font-weight: bold; }
.flag { color: var(--bad); }
.path { font-family: ui-monospace, monospace; font-size: .85em; word-break: break-all; }
.none { color: var(--faint); font-style: italic; }
table.science { width: 100%; }
.science td { min-width: 6em; }
.science tr.poor td { background: var(--poorbg); }
.science td.verdict { min-width: 12em; }
.verdict-poor { color: var(--bad); font-weight: bold; }
.verdict-good { color: var(--muted); }
svg.timeline { width: 100%; height: auto; display: block; color: var(--fg); }
svg.timeline text { fill: currentColor; font: 12px system-ui, sans-serif; }
svg.timeline .tl-tick, svg.timeline .tl-none { fill: var(--muted); }
svg.timeline .tl-frame { fill: none; stroke: var(--line); }
svg.timeline .tl-line { fill: none; stroke: var(--faint); stroke-width: 1; }
svg.timeline .tl-dot { fill: var(--accent); }
svg.timeline .tl-poor { fill: var(--bad); }
svg.timeline .tl-cal { stroke-width: 2; stroke: var(--faint); }
svg.timeline .tl-bias { stroke: #7a869a; }
svg.timeline .tl-dark { stroke: #8a5cc2; }
svg.timeline .tl-flat { stroke: #d49a1a; }
.legend > span { margin-right: 1.2em; }
.lg-bias { color: #7a869a; } .lg-dark { color: #8a5cc2; } .lg-flat { color: #d49a1a; }
"""
