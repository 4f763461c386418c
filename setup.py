"""Package layout only (metadata and dependencies are in setup.cfg).

The repository's ``agents/`` folder installs under the import name ``text_envs_agents``: a top-level
``agents`` package would share its ``__init__.py`` with ``openai-agents`` (``from agents import Agent``)
and the older ``agents`` distribution, so installing or uninstalling either would break the other.
"""

from setuptools import find_packages, setup

agent_packages = find_packages(include=["agents", "agents.*"])
setup(
    packages=find_packages(include=["text_envs", "text_envs.*"])
    + ["text_envs_agents" + name[len("agents") :] for name in agent_packages],
    package_dir={"text_envs_agents": "agents"},
)
