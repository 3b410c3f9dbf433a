"""starlabel_fourmost: 4MOST low-resolution spectrograph (LRS) stub plugin."""
