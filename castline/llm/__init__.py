"""Model providers behind one interface, chosen by "provider:model" routes."""

from castline.llm.base import Provider, Result, Task, Usage
from castline.llm.registry import Route, Routing, plan_routing, register

__all__ = ["Provider", "Result", "Route", "Routing", "Task", "Usage", "plan_routing", "register"]
