"""A local fake of the Anthropic, Gemini and OpenAI HTTP APIs for castline's tests and benchmarks.

```
from tests.fake_api import FakeAPI, Fault

with FakeAPI(latency_ms=0, seed=0) as fake:
    client = anthropic.Anthropic(api_key="test", base_url=fake.url, max_retries=0)
    fake.queue(Fault.OVERLOADED, times=2, path="/v1/messages")
    ...
    fake.stats.requests["anthropic.messages"]
```

The real SDKs talk to it unchanged (point their base URL at `fake.url`; OpenAI's at
`fake.url + "/v1"`). Replies are castline structured outputs: the prompt is parsed back into its
task and solved by the offline provider, with usage and prompt caching simulated per vendor.
"""

from .search import WebPage
from .server import FakeAPI, LoggedRequest, Stats
from .wire import Fault

__all__ = ["FakeAPI", "Fault", "LoggedRequest", "Stats", "WebPage"]
