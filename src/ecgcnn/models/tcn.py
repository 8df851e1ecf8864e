"""Temporal Convolutional Network (Bai et al., 2018): causal dilated convs with weight norm and residuals."""

from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ._registry import register_model


class TemporalModule(nn.Module):
    """Two weight-normalised causal dilated convs (each →ReLU→Dropout) plus a residual connection."""

    def __init__(self, in_channels: int, channels: int, dilation: int, kernel_size: int, dropout: float):
        super().__init__()
        # Causal: pad both sides, then drop the trailing outputs, so output t sees inputs <= t only. (Conv + Slice
        # exports to ONNX at any opset and converts cleanly to TFLite; an explicit Pad op does neither as well.)
        self.chomp = (kernel_size - 1) * dilation
        self.conv1 = weight_norm(nn.Conv1d(in_channels, channels, kernel_size, dilation=dilation, padding=self.chomp))
        self.conv2 = weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=self.chomp))
        self.dropout = nn.Dropout(dropout)
        self.relu = nn.ReLU()
        self.downsample = nn.Conv1d(in_channels, channels, 1) if in_channels != channels else nn.Identity()

    def forward(self, x):
        out = self.dropout(self.relu(self.conv1(x)[..., :-self.chomp]))
        out = self.dropout(self.relu(self.conv2(out)[..., :-self.chomp]))
        return self.relu(out + self.downsample(x))


@register_model("tcn")
class TCN(nn.Module):
    """TemporalModule(d=1,2,4,8; 64 channels) → GAP → FC(32) → ReLU → Dropout → FC."""

    def __init__(self, num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3, channels: int = 64,
                 kernel_size: int = 3, dilations=(1, 2, 4, 8)):
        super().__init__()
        modules, width = [], in_channels
        for dilation in dilations:
            modules.append(TemporalModule(width, channels, dilation, kernel_size, dropout))
            width = channels
        self.features = nn.Sequential(*modules)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels, 32), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(32, num_classes))

    def forward(self, x):
        return self.head(self.pool(self.features(x)))
