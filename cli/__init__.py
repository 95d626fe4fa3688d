"""``kubectl broadcast``: a kubectl plugin to list, inspect, pause, resume and test-send
Broadcasts with the user's own kubeconfig, context and namespace.

:mod:`herald.cli.app` holds the commands, :mod:`herald.cli.views` what they print (pure),
:mod:`herald.cli.kubeapi` the Kubernetes API and :mod:`herald.cli.sending` the test send.
"""
