"""Base CNN: three conv blocks and a small classifier head (the seed's baseline)."""

from torch import nn

from ._registry import register_model


def _conv_block(in_ch: int, out_ch: int, kernel: int, dropout: float, pool: bool) -> list[nn.Module]:
    layers = [nn.Conv1d(in_ch, out_ch, kernel, padding=kernel // 2), nn.BatchNorm1d(out_ch), nn.ReLU(inplace=True),
              nn.Dropout(dropout)]
    if pool:
        layers.append(nn.MaxPool1d(2))
    return layers


@register_model("base-cnn")
class BaseCNN(nn.Module):
    """Conv(64,k7)→BN→ReLU→Dropout→MaxPool; Conv(128,k5)→…→MaxPool; Conv(256,k3)→…; GAP→FC(128)→ReLU→Dropout→FC."""

    def __init__(self, num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3,
                 widths: tuple[int, int, int] = (64, 128, 256), hidden: int = 128):
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            *_conv_block(in_channels, c1, 7, dropout, pool=True),
            *_conv_block(c1, c2, 5, dropout, pool=True),
            *_conv_block(c2, c3, 3, dropout, pool=False),
        )
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c3, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


@register_model("base-cnn-small")
def base_cnn_small(num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3) -> BaseCNN:
    """Base CNN at half width (32/64/128 channels, FC 64): ~44 k parameters, the edge model's student."""
    return BaseCNN(num_classes, in_channels, dropout, widths=(32, 64, 128), hidden=64)
