"""The language-model side: the chat/completions client and token counting."""
