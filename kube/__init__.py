"""Kubernetes: the one place that talks to the API server about Herald's own resources.

:mod:`herald.kube.connecting` loads the configuration once (in the cluster, else a
kubeconfig, as kubectl picks it); :mod:`herald.kube.broadcasts` is the client for Broadcasts
and :mod:`herald.kube.secrets` reads bot token Secrets, whose data
:mod:`herald.kube.tokens` reads into a typed result (pure); :mod:`herald.kube.bots` reads
the bot id a Bot resource's status names; :mod:`herald.kube.errors` is the
one error type those clients raise. Each component maps that error to its own (the bot to
its store errors, the plugin to a message for the user, the operator to a bounded wait) and
keeps its own field manager name.
"""
