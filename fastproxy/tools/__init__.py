"""Operator tools shipped with fastproxy, behind the ``fastproxy`` command line.

``say`` (:mod:`fastproxy.tools.say`) is a minimal Deepgram Voice Agent client that sends one
utterance through a running proxy; ``bench`` (:mod:`fastproxy.tools.bench`, with its load
generator :mod:`fastproxy.tools.loadgen`) is the end-to-end load benchmark. Each module is
imported lazily by :mod:`fastproxy.cli`, so nothing is imported here.
"""
