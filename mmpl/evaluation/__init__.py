from .harmonic_mean import harmonic_mean

__all__ = ['harmonic_mean']
