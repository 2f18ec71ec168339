"""Operator tools shipped with fastproxy, behind the ``fastproxy`` command line.

``say`` (:mod:`fastproxy.tools.say`) is a minimal Deepgram Voice Agent client that sends one
utterance through a running proxy. ``bench`` (:mod:`fastproxy.tools.bench`) is the end-to-end
load benchmark suite: its options (``bench_options``, argparse only), one scenario's processes
and figures (``bench_procs``, ``bench_scenario``), the load generator (``loadgen``, reading
``/proc`` through ``procstat``), derived figures and baselines (``bench_report``,
``bench_compare``), printing (``bench_tables``), the chart (``bench_plot``, matplotlib) and the
py-spy profile (``bench_profile``). Each is imported lazily by :mod:`fastproxy.cli`, so nothing
is imported here.
"""
