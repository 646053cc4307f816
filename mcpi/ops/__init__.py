"""Operating a deployed cluster: :mod:`~mcpi.ops.status` (what the broker, the backend
and every worker say), :mod:`~mcpi.ops.inventory` (the hosts, from the same Ansible
inventory the playbooks use) and :mod:`~mcpi.ops.hosts` (ad hoc operations on them over
SSH with Fabric).
"""
