"""chatmigrate: move chat history out of Slack, Mattermost and Rocket.Chat into SQL you control."""

__version__ = "0.1.0"
