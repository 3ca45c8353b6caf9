"""The HTTP adapters: each speaks one provider's real wire format (Anthropic Messages, OpenAI Chat
Completions, Gemini ``generateContent``, Veo ``predictLongRunning`` + operation polling) and turns its
failures into the taxonomy of ``resources.resilience.errors``.

They sit above ``resources.resilience`` (whose errors they raise) and ``resources.providers`` (the shared
contract, prompts, limits and prices, which the resilience core reads too), so no two subpackages of
``resources`` import each other.
"""
